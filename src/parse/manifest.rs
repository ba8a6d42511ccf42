//! Kubernetes manifests as text (YAML multi-document or JSON, `kind: List`) → typed objects.
