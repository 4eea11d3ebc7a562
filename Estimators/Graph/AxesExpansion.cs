using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Rewrites each Resize that lists its <c>axes</c> attribute and each Pad that takes an <c>axes</c> input
/// (opset 18+) into the all-axes form, the same function: Resize's constant scales padded with 1 and its constant sizes
/// completed with the input's other dimensions (static ones as constants, symbolic ones read at run time by Shape →
/// ScatterElements); Pad's constant pads given zeros for the other axes. The reason is ONNX Runtime 1.31: its
/// channels-last rewrite of a quantized Resize or Pad permutes scales, sizes and pads as if they covered every axis,
/// so the quantized model fails at run time ("Gather … indices element out of data bounds"). A node whose values are
/// computed, whose input rank is unknown, or (Resize) whose keep_aspect_ratio_policy is not stretch (the policy would
/// then weigh every axis) keeps its axes.</summary>
internal static class AxesExpansion
{
    /// <summary>Rewrites the Resize and Pad nodes of <paramref name="graph"/>; returns how many.</summary>
    public static int Apply(GraphEditor graph, string source)
    {
        var targets = graph.Graph.Node.Where(n => n.Domain is "" or "ai.onnx" &&
            (n.OpType == "Resize" && GraphEditor.Ints(n, "axes") is not null || n.OpType == "Pad" && n.Input.Count > 3 && n.Input[3].Length > 0)).ToList();
        if (targets.Count == 0) return 0;
        var structure = new StructuralRanks(graph.Model);
        Dictionary<string, ValueInfoProto>? inferred = null;
        TensorShapeProto? Shape(string tensor)
        {
            if (graph.Graph.Input.FirstOrDefault(i => i.Name == tensor)?.Type?.TensorType?.Shape is { } declared) return declared;
            inferred ??= ShapeInference.Infer(graph.Model, source);
            return inferred.TryGetValue(tensor, out var value) ? value.Type?.TensorType?.Shape : null;
        }
        int? Rank(string tensor) => structure.Of(tensor) ?? (Shape(tensor) is { Dim.Count: > 0 } shape ? shape.Dim.Count : null);
        var rewritten = 0;
        foreach (var node in targets)
            if (node.OpType == "Pad" ? ExpandPad(graph, node, Rank) : ExpandResize(graph, node, Rank, Shape)) rewritten++;
        if (rewritten > 0) graph.RemoveUnused();
        return rewritten;
    }

    private static bool ExpandPad(GraphEditor graph, NodeProto node, Func<string, int?> rank)
    {
        var pads = graph.Initializer(node.Input[1]);
        var axesTensor = graph.Initializer(node.Input[3]);
        if (pads is null || axesTensor is null || rank(node.Input[0]) is not { } r) return false;
        var axes = OnnxTensors.Longs(axesTensor).Select(a => (int)(a < 0 ? a + r : a)).ToArray();
        var given = OnnxTensors.Longs(pads);
        var full = new long[2 * r];
        for (var i = 0; i < axes.Length; i++)
        {
            full[axes[i]] = given[i];
            full[r + axes[i]] = given[axes.Length + i];
        }
        node.Input[1] = graph.AddInitializer(OnnxTensors.FromLongs($"{node.Name}.pads", full, 2 * r));
        node.Input.RemoveAt(3);
        while (node.Input.Count > 1 && node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
        return true;
    }

    private static bool ExpandResize(GraphEditor graph, NodeProto node, Func<string, int?> rank, Func<string, TensorShapeProto?> shapeOf)
    {
        var policy = node.Attribute.FirstOrDefault(a => a.Name == "keep_aspect_ratio_policy")?.S.ToStringUtf8() ?? "stretch";
        var scales = Constant(graph, node, 2);
        var sizes = Constant(graph, node, 3);
        if (scales.Given && scales.Tensor is null || sizes.Given && sizes.Tensor is null || policy != "stretch" && sizes.Given) return false;
        var input = node.Input[0];
        if (rank(input) is not { } r) return false;
        var axes = GraphEditor.Ints(node, "axes")!.Select(a => (int)(a < 0 ? a + r : a)).ToArray();
        if (sizes.Given)
            node.Input[3] = FullSizes(graph, node, OnnxTensors.Longs(sizes.Tensor!), axes, r, shapeOf(input));
        else
        {
            var full = Enumerable.Repeat(1f, r).ToArray();
            var given = OnnxTensors.Floats(scales.Tensor!);
            for (var i = 0; i < axes.Length; i++) full[axes[i]] = given[i];
            node.Input[2] = graph.AddInitializer(OnnxTensors.FromFloats($"{node.Name}.scales", full, r));
        }
        GraphEditor.Take(node, "axes");
        return true;
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
