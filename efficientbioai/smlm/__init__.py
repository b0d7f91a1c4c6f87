"""Single-molecule localization microscopy: PSFs, camera, simulation, evaluation, file formats."""
