using MLNetQuant.Onnx;
using MLNetQuant.OnnxPtq;
using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Appends sentence pooling (and L2 normalization) to a text encoder: the hidden-state output [batch, tokens,
/// hidden] and the attention-mask input become one output <see cref="OutputName"/> [batch, hidden], which replaces the
/// model's outputs. Written for the model's own opset (Unsqueeze and ReduceSum take axes as an attribute before 13 and
/// as an input from 13).</summary>
internal static class SentencePoolingGraph
{
    /// <summary>The pooled output's name.</summary>
    public const string OutputName = "sentence_embedding";

    /// <summary>Appends the pooling to <paramref name="model"/> (named <paramref name="source"/> in errors).</summary>
    /// <exception cref="ArgumentException">No such hidden-state output or mask input, or an output that is not
    /// [batch, tokens, hidden] float (the option at fault is named).</exception>
    public static void Append(ModelProto model, SentencePooling pooling, bool normalize, string maskInput, string? hiddenOutput, string source)
    {
        var graph = model.Graph;
        var hidden = hiddenOutput is null ? graph.Output[0]
            : graph.Output.FirstOrDefault(o => o.Name == hiddenOutput) ?? throw new ArgumentException(
                $"HiddenStateOutput '{hiddenOutput}' is not an output of {source}; its outputs are {string.Join(", ", graph.Output.Select(o => $"'{o.Name}'"))}.",
                nameof(OnnxModelOptions.HiddenStateOutput));
        var dims = hidden.Type?.TensorType?.Shape?.Dim;
        // The declared shape may be symbolic (the hidden size is then inferred with the rest of the graph); a declared
        // rank other than 3 or a non-float type is not hidden states.
        if (hidden.Type?.TensorType is not { ElemType: OnnxTensors.Float } || dims is not null && dims.Count is not (0 or 3))
            throw new ArgumentException($"Pooling needs a float hidden-state output [batch, tokens, hidden]; {source}'s output " +
                $"'{hidden.Name}' is not (name another with HiddenStateOutput).", nameof(OnnxModelOptions.Pooling));
        if (graph.Node.Any(n => n.Output.Contains(OutputName)) || graph.Input.Any(i => i.Name == OutputName) || graph.Initializer.Any(t => t.Name == OutputName))
            throw new ArgumentException($"{source} already has a tensor named '{OutputName}'; pooling cannot add its output.", nameof(OnnxModelOptions.Pooling));
        var opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var onnx = new OnnxGraphBuilder(graph);

        string pooled;
        if (pooling == SentencePooling.Cls)
            pooled = onnx.Node("Gather", "pool.cls", new[] { hidden.Name, onnx.Initializer("pool.first_token", new long[] { 0 }) },
                new Dictionary<string, object> { ["axis"] = 1L });
        else
        {
            var mask = graph.Input.FirstOrDefault(i => i.Name == maskInput) ?? throw new ArgumentException(
                $"Mean pooling reads the attention mask, but {source} has no input '{maskInput}' (AttentionMaskInput); its inputs are " +
                $"{string.Join(", ", graph.Input.Select(i => $"'{i.Name}'"))}.", nameof(OnnxModelOptions.AttentionMaskInput));
            var maskFloat = onnx.Node("Cast", "pool.mask_float", new[] { mask.Name }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Float });
            var mask3 = Unsqueeze(onnx, opset, maskFloat, 2);
            var masked = onnx.Node("Mul", "pool.masked", new[] { hidden.Name, mask3 });
            var summed = ReduceSum(onnx, opset, masked, 1, keepDims: false);
            var count = ReduceSum(onnx, opset, mask3, 1, keepDims: false);
            var safeCount = onnx.Node("Max", "pool.count", new[] { count, onnx.Initializer("pool.min_count", new[] { 1e-9f }) });
            pooled = onnx.Node("Div", "pool.mean", new[] { summed, safeCount });
        }
        if (normalize)
        {
            var squares = onnx.Node("Mul", "pool.squares", new[] { pooled, pooled });
            var norm = onnx.Node("Sqrt", "pool.norm", new[] { ReduceSum(onnx, opset, squares, 1, keepDims: true) });
            var safeNorm = onnx.Node("Max", "pool.safe_norm", new[] { norm, onnx.Initializer("pool.min_norm", new[] { 1e-12f }) });
            pooled = onnx.Node("Div", "pool.normalized", new[] { pooled, safeNorm });
        }
        var output = onnx.Node("Identity", OutputName, new[] { pooled });
        graph.Output.Clear();
        var shape = new TensorShapeProto();
        shape.Dim.Add(dims is { Count: 3 } ? dims[0].Clone() : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(dims is { Count: 3 } ? dims[2].Clone() : new TensorShapeProto.Types.Dimension { DimParam = "hidden" });
        graph.Output.Add(new ValueInfoProto { Name = output, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensors.Float, Shape = shape } } });
    }

    private static string Unsqueeze(OnnxGraphBuilder onnx, long opset, string input, long axis) => opset >= 13
        ? onnx.Node("Unsqueeze", "pool.unsqueeze", new[] { input, onnx.Initializer("pool.unsqueeze_axes", new[] { axis }, 1) })
        : onnx.Node("Unsqueeze", "pool.unsqueeze", new[] { input }, new Dictionary<string, object> { ["axes"] = new[] { axis } });

    private static string ReduceSum(OnnxGraphBuilder onnx, long opset, string input, long axis, bool keepDims) => opset >= 13
        ? onnx.Node("ReduceSum", "pool.sum", new[] { input, onnx.Initializer("pool.sum_axes", new[] { axis }, 1) },
            new Dictionary<string, object> { ["keepdims"] = keepDims ? 1L : 0L })
        : onnx.Node("ReduceSum", "pool.sum", new[] { input }, new Dictionary<string, object> { ["axes"] = new[] { axis }, ["keepdims"] = keepDims ? 1L : 0L });
}
