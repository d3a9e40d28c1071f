"""The third transport: a Kubernetes API (the Supervisor's, a Tanzu Kubernetes cluster's), through the official
``kubernetes`` client. :mod:`.login` logs in at the Supervisor's ``/wcp/login``; :mod:`.session` is the one
boundary every request passes (changes on the ledger, errors into the error tree); :mod:`.tanzu` the
TanzuKubernetesCluster's shapes and the kubeconfig a person keeps."""
