"""No confused deputy: what a FinetuneJob or EvalJob may ask the operator to do for its creator.

The operator creates pods on a user's behalf, so every field that makes those pods reach
something (a Secret, a PersistentVolumeClaim, another job's results) must be one the user could
reach themselves, and every field that changes where or as what the pods run (image, priority
class, tolerations, node selector) must be one the platform's configuration permits.

- `rules`: the rule table (field -> permission the requester needs), and the pure function that
  lists what one object requires;
- `placement`: the operator's allowlists for images, priority classes, toleration keys and
  node-selector keys, and the check of a spec against them;
- `policy`: the chart's ValidatingAdmissionPolicy, generated from both, so the rule is written
  once and enforced by the API server, by the operator's webhook and by the operator.
"""
