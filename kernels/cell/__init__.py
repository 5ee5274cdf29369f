"""The first hour without a cell: cell-free indexing of stills, Niggli reduction, clustering of
many images' reduced cells and their Bravais lattice, conventional cell and space groups."""
