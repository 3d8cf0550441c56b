"""What is inside a .tflite file: operators, tensors, and what XNNPACK takes."""

from __future__ import annotations

import collections

import numpy as np


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def operator_names(blob: bytes) -> list[str]:
    """Builtin operator names of the main subgraph, in execution order."""
    schema = _schema()
    model = schema.Model.GetRootAsModel(blob, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append(names.get(builtin, f"CUSTOM:{code.CustomCode()}" if code.CustomCode() else str(builtin)))
    graph = model.Subgraphs(0)
    return [codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength())]


def xnnpack_leftovers(interpreter) -> list[str]:
    """Operators the XNNPACK delegate did not take, by type, with counts (``"MEAN x16"``).

    The interpreter lists every original node plus one ``DELEGATE`` node per partition
    XNNPACK took. A node ran by the interpreter itself only reads tensors that exist
    outside the partitions (model inputs, constants, delegate outputs, outputs of other
    such nodes) and writes no delegate output; a fixed point over the graph finds them.
    """
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the only view of the node list
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    delegate_out = {t for d in delegates for t in d["outputs"]}
    delegate_in = {t for d in delegates for t in d["inputs"]}
    producer = {t: n["index"] for n in nodes for t in n["outputs"]}
    direct = {n["index"] for n in nodes if not set(n["outputs"]) & delegate_out}
    consumers = collections.defaultdict(list)
    for n in nodes:
        for t in n["inputs"]:
            consumers[t].append(n["index"])
    model_outputs = {d["index"] for d in interpreter.get_output_details()}
    by_index = {n["index"]: n for n in nodes}
    changed = True
    while changed:
        changed = False
        for i in list(direct):
            n = by_index[i]
            internal_in = any(t in producer and producer[t] not in direct and t not in delegate_out for t in n["inputs"] if t >= 0)
            internal_out = any(
                t not in delegate_in and t not in model_outputs and any(c not in direct for c in consumers[t]) for t in n["outputs"]
            )
            if internal_in or internal_out:
                direct.discard(i)
                changed = True
    counts = collections.Counter(by_index[i]["op_name"] for i in direct)
    return [f"{name} x{count}" if count > 1 else name for name, count in sorted(counts.items())]


def tensor_contract(detail: dict) -> dict:
    """JSON-ready description of an input or output tensor."""
    scale, zero = detail["quantization"]
    dtype = np.dtype(detail["dtype"]).name
    shape = [int(d) for d in detail["shape_signature"]] if "shape_signature" in detail else [int(d) for d in detail["shape"]]
    return {
        "name": detail["name"],
        "shape": [None if d < 0 else d for d in shape],
        "dtype": dtype,
        "range": [0.0, 1.0],
        "quantization": {"scale": float(scale), "zero_point": int(zero)} if scale else None,
    }
