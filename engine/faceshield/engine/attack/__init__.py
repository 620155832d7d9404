"""Algorithm 1, one stage a module: masks, noise generator, objective, step loop."""
