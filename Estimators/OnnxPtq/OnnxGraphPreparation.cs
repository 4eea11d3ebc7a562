using Google.Protobuf;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>Readies a float ONNX model for post-training quantization: folds Conv→BatchNormalization pairs, lifts old
/// opsets to 13 (what per-channel QDQ needs) when every remaining op means the same there, and makes the batch
/// dimension symbolic so calibration and inference can run batched (exporters such as CNTK fix it at 1).</summary>
internal static class OnnxGraphPreparation
{
    // Ops whose definition (inputs, attributes, semantics) does not change between their opset-7/8 versions and 13.
    private static readonly HashSet<string> SameAtOpset13 = new()
    {
        "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Sub", "Mul", "Gemm", "MatMul", "Flatten",
        "Reshape", "Concat", "Identity", "Sigmoid", "Tanh", "LeakyRelu",
    };

    /// <summary>Applies all three steps; returns how many BatchNormalization nodes were folded.</summary>
    public static int Prepare(ModelProto model)
    {
        var folded = FoldBatchNorms(model);
        UpgradeOpset(model);
        MakeBatchSymbolic(model);
        return folded;
    }

    /// <summary>Folds every BatchNormalization whose input is a Conv output used by nothing else and whose weight is an
    /// initializer: W' = W·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε); the BN node disappears.</summary>
    public static int FoldBatchNorms(ModelProto model)
    {
        var graph = model.Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        var folded = 0;
        foreach (var bn in graph.Node.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            var conv = graph.Node.FirstOrDefault(n => n.Output.Contains(bn.Input[0]));
            if (conv is null || conv.OpType != "Conv" || !initializers.TryGetValue(conv.Input[1], out var weightProto) ||
                graph.Node.Count(n => n.Input.Contains(bn.Input[0])) != 1 || graph.Output.Any(o => o.Name == bn.Input[0]) ||
                bn.Input.Skip(1).Any(i => !initializers.ContainsKey(i)))
                continue;
            var epsilon = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var gamma = OnnxGraphBuilder.Floats(initializers[bn.Input[1]]);
            var beta = OnnxGraphBuilder.Floats(initializers[bn.Input[2]]);
            var mean = OnnxGraphBuilder.Floats(initializers[bn.Input[3]]);
            var variance = OnnxGraphBuilder.Floats(initializers[bn.Input[4]]);
            var weight = OnnxGraphBuilder.Floats(weightProto);
            var channels = gamma.Length;
            var perChannel = weight.Length / channels;
            var bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? OnnxGraphBuilder.Floats(initializers[conv.Input[2]]) : new float[channels];
            var newWeight = new float[weight.Length];
            var newBias = new float[channels];
            for (var c = 0; c < channels; c++)
            {
                var factor = gamma[c] / MathF.Sqrt(variance[c] + epsilon);
                for (var k = 0; k < perChannel; k++) newWeight[c * perChannel + k] = weight[c * perChannel + k] * factor;
                newBias[c] = beta[c] + (bias[c] - mean[c]) * factor;
            }
            var weightName = $"{conv.Output[0]}.folded_weight";
            var biasName = $"{conv.Output[0]}.folded_bias";
            graph.Initializer.Add(FloatTensor(weightName, newWeight, weightProto.Dims.ToArray()));
            graph.Initializer.Add(FloatTensor(biasName, newBias, channels));
            conv.Input[1] = weightName;
            if (conv.Input.Count > 2) conv.Input[2] = biasName;
            else conv.Input.Add(biasName);
            conv.Output[0] = bn.Output[0];
            graph.Node.Remove(bn);
            folded++;
        }
        RemoveUnusedInitializers(graph);
        return folded;
    }

    /// <summary>Declares opset 13 (IR 7) when the model's opset is older and every op means the same at 13.</summary>
    /// <exception cref="NotSupportedException">An op whose definition changed, named.</exception>
    public static void UpgradeOpset(ModelProto model)
    {
        var opset = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (opset is null || opset.Version >= 13) return;
        var changed = model.Graph.Node.Select(n => n.OpType).Where(t => !SameAtOpset13.Contains(t)).Distinct().ToArray();
        if (changed.Length > 0)
            throw new NotSupportedException($"The model uses opset {opset.Version}; lifting it to 13 for per-channel QDQ is not " +
                $"implemented for: {string.Join(", ", changed)}.");
        opset.Version = 13;
        model.IrVersion = Math.Max(model.IrVersion, 7);
    }

    /// <summary>Makes the first dimension of the graph's inputs and outputs symbolic and drops stale value_info.</summary>
    public static void MakeBatchSymbolic(ModelProto model)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
        foreach (var value in model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Concat(model.Graph.Output))
        {
            var dims = value.Type?.TensorType?.Shape?.Dim;
            if (dims is { Count: > 0 }) dims[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
        }
        model.Graph.ValueInfo.Clear();
        // Initializers listed as graph inputs (IR < 4) would be overridable inputs; they are constants here.
        foreach (var input in model.Graph.Input.Where(i => initializers.Contains(i.Name)).ToList()) model.Graph.Input.Remove(input);
    }

    private static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).ToHashSet();
        foreach (var unused in graph.Initializer.Where(t => !used.Contains(t.Name)).ToList()) graph.Initializer.Remove(unused);
        foreach (var input in graph.Input.Where(i => !used.Contains(i.Name) && graph.Initializer.All(t => t.Name != i.Name)).ToList())
            if (graph.Node.All(n => !n.Input.Contains(input.Name))) graph.Input.Remove(input);
    }

    private static TensorProto FloatTensor(string name, float[] values, params long[] dims)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        var tensor = new TensorProto { Name = name, DataType = 1, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }
}
