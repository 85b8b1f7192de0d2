"""ClusterFinetunePolicy rules, written once: the operator's check, `kubetune policy check`
and the chart's ValidatingAdmissionPolicy (its CEL is generated from the same table)."""
