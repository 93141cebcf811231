"""The etcd operator (EtcdCluster, EtcdBackup, EtcdRestore); built on opkit."""

__all__: list[str] = []
