"""The reduction funnel: the statuses an image passes, in order, and the counts named after them.

One home for the funnel's words: the kernels' summaries, the results DB views, the pipeline's
published counts and the dashboard all take them from here. No heavy imports.
"""

from __future__ import annotations

# ImageResult.status of an image that got at least that far, in the order images pass them
FUNNEL = ("hit", "indexed", "refined", "integrated")
# the counts of summary.json and of a published run: every image, then those past each stage
COUNTS = ("images", "hits", "indexed", "refined", "integrated")
# the counts the results DB keeps per image row (refinement is not a column of its own)
LOGGED_COUNTS = ("images", "hits", "indexed", "integrated")
