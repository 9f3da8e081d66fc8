"""summarizer: meeting transcripts in, Obsidian vault notes out."""

__version__ = "0.1.0"
