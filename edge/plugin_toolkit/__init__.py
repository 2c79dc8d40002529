"""The plugin author's toolkit behind ``edge plugin new|build|test``."""
