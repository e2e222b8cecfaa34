"""Face alignment: landmarks → least-squares fit to a template → crop; and paste-back.

The public entry points live in `rbedit.align.pipeline` (prepare_faces,
paste_back, FaceCrop); geometry and templates are importable on their own.
"""
