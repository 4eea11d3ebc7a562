using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019; AIMET's CLE): for two weighted
/// layers A → B joined by positively homogeneous ops (ReLU, LeakyReLU, max/average pooling), dividing A's output
/// channel c (its filter and bias) by s_c and multiplying B's input channel c by s_c leaves the float function
/// unchanged. s_c = √(r_A,c / r_B,c), with r the channel's largest |weight|, gives both layers the same per-channel
/// range, so a per-tensor weight grid no longer wastes its levels on one channel — the loss of per-tensor int8 on
/// depthwise-separable nets. Chains of three or more layers are swept until the factors settle.</summary>
/// <remarks>ReLU6 (Clip 0…6) is not homogeneous: like AIMET, equalization replaces it by ReLU in the pairs it scales
/// (the float model then no longer clips at 6; the log and the report's algorithm name say so).</remarks>
internal static class CrossLayerEqualization
{
    private static readonly HashSet<string> Homogeneous = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "Identity",
    };

    /// <summary>What equalization did.</summary>
    /// <param name="Pairs">Layer pairs equalized.</param>
    /// <param name="Relu6Replaced">Clip(0, 6) nodes replaced by Relu.</param>
    public sealed record Result(int Pairs, int Relu6Replaced);

    /// <summary>Equalizes every eligible pair of <paramref name="model"/> in place.</summary>
    public static Result Apply(ModelProto model, ISet<string> excludedNodes)
    {
        var graph = model.Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var input in node.Input.Where(i => i.Length > 0))
                (consumers.TryGetValue(input, out var list) ? list : consumers[input] = new List<NodeProto>()).Add(node);
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);

        // A weight or bias read by another node too cannot be rescaled for one of them.
        TensorProto? OwnConstant(NodeProto node, int input) => node.Input.Count > input && initializers.TryGetValue(node.Input[input], out var t) &&
            t.DataType == OnnxTensors.Float && consumers[t.Name].Count == 1 ? t : null;
        bool Weighted(NodeProto node) => node.OpType is "Conv" or "Gemm" or "MatMul" && node.Domain is "" or "ai.onnx" &&
            !excludedNodes.Contains(node.Name) && (node.OpType != "Gemm" || GraphEditor.Int(node, "transA", 0) == 0) &&
            OwnConstant(node, 1) is { } w && WeightChannels.Of(node, w) is not null;

        var pairs = new List<(NodeProto A, NodeProto B, List<NodeProto> Clips)>();
        foreach (var a in graph.Node.Where(Weighted).ToList())
        {
            var clips = new List<NodeProto>();
            var tensor = a.Output[0];
            NodeProto? b = null;
            while (!outputs.Contains(tensor) && consumers.TryGetValue(tensor, out var next) && next.Count == 1)
            {
                var node = next[0];
                if (node.Input[0] != tensor) break;
                if (Weighted(node)) { b = node; break; }
                if (node.OpType == "Clip" && IsRelu6(node, initializers)) clips.Add(node);
                else if (!Homogeneous.Contains(node.OpType) || node.Output.Count != 1) break;
                tensor = node.Output[0];
            }
            if (b is null) continue;
            var aw = WeightChannels.Of(a, OwnConstant(a, 1)!)!;
            var bw = WeightChannels.Of(b, OwnConstant(b, 1)!)!;
            if (aw.Outputs != bw.Inputs || (a.Input.Count > 2 && a.Input[2].Length > 0 && OwnConstant(a, 2) is null)) continue;
            pairs.Add((a, b, clips));
        }

        foreach (var clip in pairs.SelectMany(p => p.Clips).Distinct())
        {
            clip.OpType = "Relu";
            while (clip.Input.Count > 1) clip.Input.RemoveAt(1);
            clip.Attribute.Clear();
        }

        for (var sweep = 0; sweep < 20; sweep++)
        {
            var largest = 0.0;
            foreach (var (a, b, _) in pairs) largest = Math.Max(largest, Equalize(a, b, OwnConstant(a, 1)!, OwnConstant(b, 1)!, OwnConstant(a, 2)));
            if (largest < 1e-3) break; // every |log s| tiny: settled
        }
        return new Result(pairs.Count, pairs.SelectMany(p => p.Clips).Distinct().Count());
    }

    // Scales one pair; returns the largest |ln s_c|.
    private static double Equalize(NodeProto a, NodeProto b, TensorProto aWeight, TensorProto bWeight, TensorProto? aBias)
    {
        var aLayout = WeightChannels.Of(a, aWeight)!;
        var bLayout = WeightChannels.Of(b, bWeight)!;
        var aValues = OnnxTensors.Floats(aWeight);
        var bValues = OnnxTensors.Floats(bWeight);
        var rangeA = new double[aLayout.Outputs];
        var rangeB = new double[bLayout.Inputs];
        for (var i = 0; i < aValues.Length; i++) rangeA[aLayout.OutputOf(i)] = Math.Max(rangeA[aLayout.OutputOf(i)], Math.Abs(aValues[i]));
        for (var i = 0; i < bValues.Length; i++) rangeB[bLayout.InputOf(i)] = Math.Max(rangeB[bLayout.InputOf(i)], Math.Abs(bValues[i]));
        // A dead channel (all-zero weights on either side) keeps s = 1.
        var s = rangeA.Zip(rangeB, (ra, rb) => ra > 0 && rb > 0 ? Math.Clamp(Math.Sqrt(ra / rb), 1e-4, 1e4) : 1.0).ToArray();
        for (var i = 0; i < aValues.Length; i++) aValues[i] = (float)(aValues[i] / s[aLayout.OutputOf(i)]);
        for (var i = 0; i < bValues.Length; i++) bValues[i] = (float)(bValues[i] * s[bLayout.InputOf(i)]);
        OnnxTensors.SetFloats(aWeight, aValues);
        OnnxTensors.SetFloats(bWeight, bValues);
        if (aBias is not null)
        {
            var bias = OnnxTensors.Floats(aBias);
            if (bias.Length == s.Length)
            {
                for (var c = 0; c < bias.Length; c++) bias[c] = (float)(bias[c] / s[c]);
                OnnxTensors.SetFloats(aBias, bias);
            }
        }
        return s.Max(v => Math.Abs(Math.Log(v)));
    }

    // Clip with min 0 and max 6 (inputs from opset 11, attributes before).
    private static bool IsRelu6(NodeProto clip, Dictionary<string, TensorProto> initializers)
    {
        float? Bound(int input, string attribute)
        {
            if (clip.Input.Count > input && clip.Input[input].Length > 0)
                return initializers.TryGetValue(clip.Input[input], out var t) && t.DataType == OnnxTensors.Float && OnnxTensors.ElementCount(t) == 1
                    ? OnnxTensors.Floats(t)[0] : null;
            return clip.Attribute.Any(x => x.Name == attribute) ? GraphEditor.Float(clip, attribute, 0) : null;
        }
        return Bound(1, "min") == 0f && Bound(2, "max") == 6f;
    }
}
