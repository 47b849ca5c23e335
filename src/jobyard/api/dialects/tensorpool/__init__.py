"""The TensorPool dialect: TensorPool's wire format over Jobyard's core (same API keys)."""
