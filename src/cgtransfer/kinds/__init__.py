"""CG model kinds behind one interface (`kinds.base.CGModel`): ``hipnn`` (`kinds.hipnn`), ``hipnn_t``
(`kinds.hipnn_t`) and ``mscg`` (`kinds.mscg`); `kinds.registry` maps a kind's name to its class."""
