"""Network definitions: StarGAN's generator (and TRACER, in `tracer/`)."""
