"""Shared informers: a local, indexed, always-current cache of API objects plus change events.

The pieces, as in client-go's ``tools/cache``:

* :class:`Reflector` lists and watches one collection (paging, bookmarks, 410 relists, stall
  detection, backoff) through a :class:`ListerWatcher`.
* :class:`DeltaFIFO` queues per-object changes and turns relists into tombstoned deletions.
* :class:`Store` (alias :class:`Indexer`) is the thread-safe cache with secondary indexes.
* :class:`SharedInformer` wires them together and fans events out to many handlers.
* :class:`InformerFactory` hands out one informer per resource and scope, shared by everyone.

Cached objects are the parsed JSON dicts, shared without copying: never mutate them.
"""

from opkit._fifo import Delta, DeltaFIFO, DeltaType, FIFOClosedError, InitialList
from opkit._informer_factory import InformerFactory, InformerKey
from opkit._reflector import (
    BackoffConfig,
    ListerWatcher,
    ListOptions,
    Reflector,
    ReflectorConfig,
    ResourceClientListerWatcher,
    WatchStream,
)
from opkit._shared_informer import (
    MINIMUM_RESYNC_PERIOD,
    EventHandlerRegistration,
    SharedInformer,
    wait_for_cache_sync,
)
from opkit._store import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    IndexFunc,
    Obj,
    Store,
    Transform,
    deletion_handling_key,
    drop_managed_fields,
    meta_namespace_index_func,
    meta_namespace_key,
    split_key,
)

__all__ = [
    "MINIMUM_RESYNC_PERIOD",
    "NAMESPACE_INDEX",
    "BackoffConfig",
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "EventHandlerRegistration",
    "FIFOClosedError",
    "IndexFunc",
    "Indexer",
    "InformerFactory",
    "InformerKey",
    "InitialList",
    "ListOptions",
    "ListerWatcher",
    "Obj",
    "Reflector",
    "ReflectorConfig",
    "ResourceClientListerWatcher",
    "SharedInformer",
    "Store",
    "Transform",
    "WatchStream",
    "deletion_handling_key",
    "drop_managed_fields",
    "meta_namespace_index_func",
    "meta_namespace_key",
    "split_key",
    "wait_for_cache_sync",
]
