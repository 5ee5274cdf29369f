"""Detector geometry refinement from many indexed stills (``python -m kernels refine-geometry``):
the whole detector's shift (beam centre, distance) and the in-plane motion of its rigid groups,
jointly with every image's orientation; a refined ``.geom`` and residuals before and after."""
