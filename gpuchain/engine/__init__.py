"""The engine: Tensor, primitives and their application, graph nodes, the reverse pass and
the grad/forward-mode switches."""
