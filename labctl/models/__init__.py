"""Teachers, SCLC students (digital and optics-aware), their back ends and checkpoints."""
