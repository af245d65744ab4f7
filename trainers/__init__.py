"""One trainer per model, all on the shared loop in `trainers.loop`. Trainers write checkpoints;
they never import Flask routes."""
