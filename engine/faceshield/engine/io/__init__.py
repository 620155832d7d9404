"""Image codecs and tensor conversion at the engine's edge."""
