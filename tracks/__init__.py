"""tracks: the certification tracks, their registry and the runner (`python -m tracks.run`)."""
