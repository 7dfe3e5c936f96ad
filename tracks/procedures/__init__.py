"""Procedures a track entry calls: the genuinely procedural parts of a track (training arms, a
fresh interpreter, a figure drawn from measured rows) that are not a pure measure. One module per
track or topic; a procedure never imports a track module."""
