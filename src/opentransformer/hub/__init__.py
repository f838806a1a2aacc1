"""Find models: the built-in default, local files and directories, downloaded repos."""
