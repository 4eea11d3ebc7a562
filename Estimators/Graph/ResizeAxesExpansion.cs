using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Rewrites each Resize that lists its <c>axes</c> (opset 18+) into the all-axes form, the same function:
/// constant scales padded with 1, constant sizes completed with the input's other dimensions (static ones as
/// constants, symbolic ones read at run time by Shape → ScatterElements). The reason is ONNX Runtime 1.31: its
/// channels-last rewrite of a quantized Resize permutes scales and sizes as if they covered every axis, so a quantized
/// Resize with axes fails at run time ("Gather … indices element out of data bounds"). A Resize whose scales or sizes
/// are computed, whose input rank is unknown, or whose keep_aspect_ratio_policy is not stretch (the policy would then
/// weigh every axis) keeps its axes.</summary>
internal static class ResizeAxesExpansion
{
    /// <summary>Rewrites the Resize nodes of <paramref name="graph"/>; returns how many.</summary>
    public static int Apply(GraphEditor graph, string source)
    {
        var targets = graph.Graph.Node.Where(n => n.OpType == "Resize" && n.Domain is "" or "ai.onnx" && GraphEditor.Ints(n, "axes") is not null).ToList();
        if (targets.Count == 0) return 0;
        var structure = new StructuralRanks(graph.Model);
        Dictionary<string, ValueInfoProto>? inferred = null;
        TensorShapeProto? InferredShape(string tensor)
        {
            inferred ??= ShapeInference.Infer(graph.Model, source);
            return inferred.TryGetValue(tensor, out var value) ? value.Type?.TensorType?.Shape : null;
        }
        var rewritten = 0;
        foreach (var node in targets)
        {
            var policy = node.Attribute.FirstOrDefault(a => a.Name == "keep_aspect_ratio_policy")?.S.ToStringUtf8() ?? "stretch";
            var scales = Constant(graph, node, 2);
            var sizes = Constant(graph, node, 3);
            if (scales.Given && scales.Tensor is null || sizes.Given && sizes.Tensor is null || policy != "stretch" && sizes.Given) continue;
            var input = node.Input[0];
            var shape = graph.Graph.Input.FirstOrDefault(i => i.Name == input)?.Type?.TensorType?.Shape;
            var rank = structure.Of(input) ?? shape?.Dim.Count;
            if (rank is null or 0 || sizes.Given)
            {
                shape ??= InferredShape(input);
                rank ??= shape is { Dim.Count: > 0 } ? shape.Dim.Count : null;
            }
            if (rank is not { } r || r == 0) continue;
            var axes = GraphEditor.Ints(node, "axes")!.Select(a => (int)(a < 0 ? a + r : a)).ToArray();
            if (sizes.Given)
                node.Input[3] = FullSizes(graph, node, OnnxTensors.Longs(sizes.Tensor!), axes, r, shape);
            else
            {
                var full = Enumerable.Repeat(1f, r).ToArray();
                var given = OnnxTensors.Floats(scales.Tensor!);
                for (var i = 0; i < axes.Length; i++) full[axes[i]] = given[i];
                node.Input[2] = graph.AddInitializer(OnnxTensors.FromFloats($"{node.Name}.scales", full, r));
            }
            GraphEditor.Take(node, "axes");
            rewritten++;
        }
        if (rewritten > 0) graph.RemoveUnused();
        return rewritten;
    }

    // Whether input `index` is given, and its initializer when it is a constant.
    private static (bool Given, TensorProto? Tensor) Constant(GraphEditor graph, NodeProto node, int index) =>
        index < node.Input.Count && node.Input[index].Length > 0 ? (true, graph.Initializer(node.Input[index])) : (false, null);

    // Sizes for every axis: the listed ones given, the others the input's own — constants when all are static,
    // else the input's Shape with the given sizes scattered in.
    private static string FullSizes(GraphEditor graph, NodeProto node, long[] given, int[] axes, int rank, TensorShapeProto? shape)
    {
        var full = new long[rank];
        var isStatic = shape is not null && shape.Dim.Count == rank;
        for (var d = 0; d < rank && isStatic; d++)
        {
            full[d] = shape!.Dim[d].DimValue;
            isStatic = full[d] > 0;
        }
        if (isStatic)
        {
            for (var i = 0; i < axes.Length; i++) full[axes[i]] = given[i];
            return graph.AddInitializer(OnnxTensors.FromLongs($"{node.Name}.sizes", full, rank));
        }
        var inputShape = graph.Unique($"{node.Name}.input_shape");
        var sizes = graph.Unique($"{node.Name}.sizes");
        var shapeNode = new NodeProto { OpType = "Shape", Name = inputShape };
        shapeNode.Input.Add(node.Input[0]);
        shapeNode.Output.Add(inputShape);
        var scatter = new NodeProto { OpType = "ScatterElements", Name = sizes };
        scatter.Input.Add(inputShape);
        scatter.Input.Add(graph.AddInitializer(OnnxTensors.FromLongs($"{node.Name}.axes", axes.Select(a => (long)a).ToArray(), axes.Length)));
        scatter.Input.Add(graph.AddInitializer(OnnxTensors.FromLongs($"{node.Name}.given_sizes", given, given.Length)));
        scatter.Output.Add(sizes);
        var at = graph.Graph.Node.IndexOf(node);
        graph.Graph.Node.Insert(at, scatter);
        graph.Graph.Node.Insert(at, shapeNode);
        return sizes;
    }
}
