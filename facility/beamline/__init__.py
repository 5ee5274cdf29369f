"""The simulated beamline: SFX runs with ground truth, written and concluded like a real DAQ."""
