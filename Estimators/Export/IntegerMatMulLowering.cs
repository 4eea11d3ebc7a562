using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>Lowers the QDQ form of a quantized MatMul to ONNX Runtime's CPU kernel for it, taking in what ORT's own QDQ
/// fusion leaves outside:
/// <code>
/// X ─ QuantizeLinear ─ DequantizeLinear ─┐
///       W_int8 ─ DequantizeLinear ─ MatMul ─ Add(bias)   →   X ─ QuantizeLinear ─ MatMulIntegerToFloat(…, W_int8, …, bias)
/// </code>
/// The bias is added inside the integer kernel (ORT's QDQ fusion leaves a float Add per projection). SmoothQuant's
/// division stays a Mul before the QuantizeLinear: folded into a per-channel QuantizeLinear scale it gives the same
/// codes, but ONNX Runtime 1.31 runs per-axis QuantizeLinear unvectorized — MiniLM's batch took 415 ms instead of 53.
/// MatMulIntegerToFloat is a com.microsoft contrib op with CPU kernels only, so this is for CPU deployment.</summary>
internal static class IntegerMatMulLowering
{
    /// <summary>Rewrites <paramref name="model"/> in place; returns how many MatMul nodes it lowered.</summary>
    public static int Lower(ModelProto model)
    {
        var graph = model.Graph;
        var editor = new GraphEditor(model);
        var producer = GraphEditor.ProducerIndex(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        NodeProto? From(string tensor, string opType) => producer.TryGetValue(tensor, out var p) && p.OpType == opType && p.Domain is "" or "ai.onnx" ? p : null;
        bool Scalar(string name) => initializers.TryGetValue(name, out var t) && t.Dims.Aggregate(1L, (a, b) => a * b) == 1;

        var lowered = 0;
        foreach (var matmul in graph.Node.Where(n => n.OpType == "MatMul" && n.Domain is "" or "ai.onnx").ToList())
        {
            if (From(matmul.Input[0], "DequantizeLinear") is not { } activation || From(matmul.Input[1], "DequantizeLinear") is not { } weight) continue;
            if (!Scalar(activation.Input[1]) || activation.Input.Count < 3 || !Scalar(activation.Input[2])) continue; // per-tensor activation grid
            if (!initializers.TryGetValue(weight.Input[0], out var codes) || codes.DataType != OnnxTensors.Int8 || codes.Dims.Count != 2) continue;
            var columns = codes.Dims[1];
            if (!Scalar(weight.Input[1]) && GraphEditor.Int(weight, "axis", 1) != 1) continue; // one scale per output column
            var quantize = From(activation.Input[0], "QuantizeLinear");
            if (quantize is null || outputs.Contains(matmul.Output[0])) continue;

            var inputs = new List<string> { activation.Input[0], weight.Input[0], activation.Input[1], weight.Input[1], activation.Input[2],
                weight.Input.Count > 2 ? weight.Input[2] : "" };
            var result = matmul.Output[0];
            var readers = editor.Consumers(result);
            if (readers.Count == 1 && readers[0] is { OpType: "Add" } add && add.Input.Count == 2 && add.Input.IndexOf(result) is var side and >= 0 &&
                initializers.TryGetValue(add.Input[1 - side], out var bias) && bias.DataType == OnnxTensors.Float &&
                bias.Dims.Count >= 1 && bias.Dims[^1] == columns && bias.Dims.SkipLast(1).All(d => d == 1) && columns > 1)
            {
                inputs.Add(add.Input[1 - side]);
                result = add.Output[0];
                graph.Node.Remove(add);
            }
            var fused = new NodeProto { OpType = "MatMulIntegerToFloat", Domain = GraphEditor.MicrosoftDomain, Name = editor.Unique($"{matmul.Name}.integer") };
            fused.Input.AddRange(inputs);
            fused.Output.Add(result);
            graph.Node.Insert(graph.Node.IndexOf(matmul), fused);
            graph.Node.Remove(matmul);
            lowered++;
        }
        if (lowered > 0) editor.ImportMicrosoftDomain();
        editor.RemoveUnused(); // the DequantizeLinear nodes the integer kernels no longer read
        return lowered;
    }
}
