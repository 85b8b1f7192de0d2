"""Tests of the Helm chart, the operator image and the GitOps health check."""
