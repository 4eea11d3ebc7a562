using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Folds each inference BatchNormalization into the Conv, ConvTranspose or Gemm before it, the way PyTorch's
/// fuse_conv_bn_eval does: per output channel c, f = γ/√(σ²+ε), W' = W·f along the output-channel axis and
/// b' = β + (b − μ)·f. Quantization then sees the weights the integer kernel will use, and the BN node is gone.</summary>
internal static class BatchNormFolding
{
    /// <summary>Folds every foldable pair; returns how many BatchNormalization nodes disappeared.</summary>
    public static int Apply(GraphEditor graph)
    {
        var folded = 0;
        foreach (var bn in graph.Graph.Node.Where(n => n.OpType == "BatchNormalization" && n.Domain is "" or "ai.onnx").ToList())
        {
            var producer = graph.Producer(bn.Input[0]);
            if (producer is null || producer.OpType is not ("Conv" or "ConvTranspose" or "Gemm") || producer.Domain is not ("" or "ai.onnx") ||
                graph.Consumers(bn.Input[0]).Count != 1 || graph.IsGraphOutput(bn.Input[0]) || bn.Output.Skip(1).Any(o => o.Length > 0) ||
                graph.Initializer(producer.Input[1]) is not { DataType: OnnxTensors.Float } weight ||
                bn.Input.Skip(1).Take(4).Any(i => graph.Initializer(i) is not { DataType: OnnxTensors.Float }))
                continue;
            var gamma = OnnxTensors.Floats(graph.Initializer(bn.Input[1])!);
            var beta = OnnxTensors.Floats(graph.Initializer(bn.Input[2])!);
            var mean = OnnxTensors.Floats(graph.Initializer(bn.Input[3])!);
            var variance = OnnxTensors.Floats(graph.Initializer(bn.Input[4])!);
            var epsilon = GraphEditor.Float(bn, "epsilon", 1e-5f);
            var channels = gamma.Length;
            var factor = new float[channels];
            for (var c = 0; c < channels; c++) factor[c] = gamma[c] / MathF.Sqrt(variance[c] + epsilon);

            var dims = weight.Dims.ToArray();
            var values = OnnxTensors.Floats(weight);
            var channelOf = OutputChannelOf(producer, dims, channels);
            if (channelOf is null) continue;
            var scaled = new float[values.Length];
            for (var i = 0; i < values.Length; i++) scaled[i] = values[i] * factor[channelOf(i)];

            var bias = Bias(graph, producer, channels);
            if (bias is null) continue;
            var gemmBeta = producer.OpType == "Gemm" ? GraphEditor.Float(producer, "beta", 1f) : 1f;
            var newBias = new float[channels];
            for (var c = 0; c < channels; c++) newBias[c] = beta[c] + (gemmBeta * bias[c] - mean[c]) * factor[c];

            producer.Input[1] = graph.AddInitializer(OnnxTensors.FromFloats($"{producer.Name}.folded_weight", scaled, dims));
            var biasName = graph.AddInitializer(OnnxTensors.FromFloats($"{producer.Name}.folded_bias", newBias, channels));
            if (producer.Input.Count > 2) producer.Input[2] = biasName;
            else producer.Input.Add(biasName);
            if (producer.OpType == "Gemm")
            {
                GraphEditor.Take(producer, "beta");
                producer.Attribute.Add(new AttributeProto { Name = "beta", Type = AttributeProto.Types.AttributeType.Float, F = 1f });
            }
            producer.Output[0] = bn.Output[0];
            graph.Graph.Node.Remove(bn);
            folded++;
        }
        graph.RemoveUnused();
        return folded;
    }

    // Maps a flat weight index to its output channel: Conv W[out, in/g, k…]; ConvTranspose W[in, out/g, k…] (output
    // channel g·(out/g) + j for input-channel group g); Gemm B[out, in] with transB, else B[in, out].
    private static Func<int, int>? OutputChannelOf(NodeProto node, long[] dims, int channels)
    {
        switch (node.OpType)
        {
            case "Conv" when dims.Length >= 1 && dims[0] == channels:
                var perOut = (int)(dims.Skip(1).Aggregate(1L, (a, b) => a * b));
                return i => i / perOut;
            case "ConvTranspose" when dims.Length >= 2:
                var group = (int)GraphEditor.Int(node, "group", 1);
                var perGroupOut = (int)dims[1];
                if (perGroupOut * group != channels) return null;
                var kernel = (int)dims.Skip(2).Aggregate(1L, (a, b) => a * b);
                var inPerGroup = (int)dims[0] / group;
                return i =>
                {
                    var inChannel = i / (perGroupOut * kernel);
                    var j = i / kernel % perGroupOut;
                    return inChannel / inPerGroup * perGroupOut + j;
                };
            case "Gemm" when dims.Length == 2:
                var transB = GraphEditor.Int(node, "transB", 0) == 1;
                if ((transB ? dims[0] : dims[1]) != channels) return null;
                var columns = (int)dims[1];
                return transB ? i => i / columns : i => i % columns;
            default:
                return null;
        }
    }

    // The producer's bias per output channel (zeros when absent; a Gemm C of one value or [1, out] broadcast), or null
    // when it is not a constant of a foldable shape.
    private static float[]? Bias(GraphEditor graph, NodeProto node, int channels)
    {
        if (node.Input.Count < 3 || node.Input[2].Length == 0) return new float[channels];
        if (graph.Initializer(node.Input[2]) is not { DataType: OnnxTensors.Float } tensor) return null;
        var values = OnnxTensors.Floats(tensor);
        if (values.Length == channels && (tensor.Dims.Count <= 1 || tensor.Dims[0] == 1 || node.OpType != "Gemm")) return values;
        if (values.Length == 1) return Enumerable.Repeat(values[0], channels).ToArray();
        return null;
    }
}
