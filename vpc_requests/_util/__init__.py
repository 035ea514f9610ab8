"""Small helpers shared by every layer (deadlines, fork detection)."""
