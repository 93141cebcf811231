"""Local kubelet of the embedded control plane (private for now).

Runs each Pod's containers as local processes, each Pod in its own network namespace with one
address in 127.0.0.0/8 and its own view of ``/etc/hosts``. Building blocks:

* :mod:`._netns`: the pod network (bridge, namespaces, veth pairs, addresses); needs root.
* :mod:`._podexec`: the wrapper that runs a program inside a pod's namespaces.
* :mod:`._procs`: spawning, stopping and reaping process groups without leaks.
* :mod:`._hosts`: cluster names as hosts files and a host-side resolver hook.
* :mod:`._tools`: where programs standing in for container images are found.

See docs/kubelet-network.md.
"""
