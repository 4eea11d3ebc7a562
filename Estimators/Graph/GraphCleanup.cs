using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Normalises what exporters write differently into one form the quantizer can match on: Constant nodes
/// become initializers, Identity and inference-time Dropout disappear (so a bias shared through an Identity reads the
/// initializer itself), and every node gets a unique name the report and the options can refer to.</summary>
internal static class GraphCleanup
{
    /// <summary>Applies all steps.</summary>
    public static void Apply(GraphEditor graph, string source)
    {
        NameNodes(graph);
        ConstantsToInitializers(graph);
        RemovePassThroughs(graph, source);
        graph.RemoveUnused();
    }

    /// <summary>Gives unnamed (or duplicate-named) nodes the name "OpType_index".</summary>
    public static void NameNodes(GraphEditor graph)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < graph.Graph.Node.Count; i++)
        {
            var node = graph.Graph.Node[i];
            if (node.Name.Length == 0 || !seen.Add(node.Name))
            {
                node.Name = graph.Unique($"{node.OpType}_{i}");
                seen.Add(node.Name);
            }
        }
    }

    /// <summary>Turns each default-domain Constant node holding a tensor or numbers into an initializer of its output's
    /// name (kept as a node when the output is a graph output, which an initializer cannot be).</summary>
    public static void ConstantsToInitializers(GraphEditor graph)
    {
        foreach (var node in graph.Graph.Node.Where(n => n.OpType == "Constant" && n.Domain is "" or "ai.onnx").ToList())
        {
            if (graph.IsGraphOutput(node.Output[0])) continue;
            var tensor = ConstantValue(node);
            if (tensor is null) continue;
            tensor.Name = node.Output[0];
            graph.Graph.Initializer.Add(tensor);
            graph.Graph.Node.Remove(node);
        }
    }

    private static TensorProto? ConstantValue(NodeProto node)
    {
        var attribute = node.Attribute.FirstOrDefault();
        if (attribute is null || node.Attribute.Count != 1) return null;
        switch (attribute.Name)
        {
            case "value":
                return attribute.T.Clone();
            case "value_float":
                return OnnxTensors.FromFloats("", new[] { attribute.F });
            case "value_floats":
                return OnnxTensors.FromFloats("", attribute.Floats.ToArray(), attribute.Floats.Count);
            case "value_int":
                return OnnxTensors.FromLongs("", new[] { attribute.I });
            case "value_ints":
                return OnnxTensors.FromLongs("", attribute.Ints.ToArray(), attribute.Ints.Count);
            default:
                return null; // strings and sparse tensors stay Constant nodes
        }
    }

    /// <summary>Removes Identity and Dropout nodes (inference: Dropout passes its input through), rewiring their
    /// consumers to the input. One whose output is a graph output stays unless its input can be renamed.</summary>
    /// <exception cref="NotSupportedException">A Dropout whose mask output is read.</exception>
    public static void RemovePassThroughs(GraphEditor graph, string source)
    {
        foreach (var node in graph.Graph.Node.Where(n => n.OpType is "Identity" or "Dropout" && n.Domain is "" or "ai.onnx").ToList())
        {
            if (node.OpType == "Dropout" && node.Output.Count > 1 && node.Output[1].Length > 0 &&
                (graph.Consumers(node.Output[1]).Count > 0 || graph.IsGraphOutput(node.Output[1])))
                throw new NotSupportedException($"{source}: node '{node.Name}' (Dropout) has its mask output read; only inference graphs are supported.");
            var input = node.Input[0];
            var output = node.Output[0];
            if (graph.IsGraphOutput(output))
            {
                // An exporter's Identity that only names the output: the producer writes the output itself, so the
                // quantizer sees the node's result is a model output.
                var producer = graph.Producer(input);
                if (producer is null || graph.IsGraphOutput(input) || graph.Consumers(input).Count != 1) continue;
                producer.Output[producer.Output.IndexOf(input)] = output;
                graph.Graph.Node.Remove(node);
                continue;
            }
            graph.ReplaceUses(output, input);
            graph.Graph.Node.Remove(node);
        }
    }

    /// <summary>Raises a clear error for nodes holding subgraphs (If, Loop, Scan), which the quantizer cannot see into.</summary>
    public static void RefuseSubgraphs(GraphProto graph, string source, int opset)
    {
        var node = graph.Node.FirstOrDefault(n => n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0));
        if (node is not null)
            throw new NotSupportedException($"{source}: node '{node.Name}' ({node.OpType}, opset {opset}) holds a subgraph; control flow " +
                "(If, Loop, Scan) is not supported by the importer.");
    }
}
