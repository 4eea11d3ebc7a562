using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Edits one ONNX graph in place for the import passes: unique names, initializer lookup, rewiring a
/// tensor's consumers, and removing what nothing uses any more. Node order stays topological because passes only
/// replace a node by nodes at its own position.</summary>
internal sealed class GraphEditor
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public GraphEditor(ModelProto model)
    {
        Model = model;
        Graph = model.Graph;
        foreach (var name in Graph.Initializer.Select(t => t.Name).Concat(Graph.Input.Select(i => i.Name))
                     .Concat(Graph.Output.Select(o => o.Name)).Concat(Graph.ValueInfo.Select(v => v.Name))
                     .Concat(Graph.Node.SelectMany(n => n.Output.Append(n.Name))))
            _names.Add(name);
    }

    /// <summary>The model being edited.</summary>
    public ModelProto Model { get; }

    /// <summary>Its graph.</summary>
    public GraphProto Graph { get; }

    /// <summary><paramref name="name"/>, or it with a numeric suffix when the graph already uses it; reserved.</summary>
    public string Unique(string name)
    {
        var candidate = name;
        for (var i = 1; !_names.Add(candidate); i++) candidate = $"{name}_{i}";
        return candidate;
    }

    /// <summary>The initializer named <paramref name="name"/>, or null.</summary>
    public TensorProto? Initializer(string name) => Graph.Initializer.FirstOrDefault(t => t.Name == name);

    /// <summary>Adds <paramref name="tensor"/> as an initializer under a unique name based on its own; returns it.</summary>
    public string AddInitializer(TensorProto tensor)
    {
        tensor.Name = Unique(tensor.Name);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>The node producing <paramref name="tensor"/>, or null for a graph input or initializer.</summary>
    public NodeProto? Producer(string tensor) => Graph.Node.FirstOrDefault(n => n.Output.Contains(tensor));

    /// <summary>Each tensor a node of <paramref name="graph"/> writes, mapped to that node: the index passes build once
    /// where they look producers up many times (<see cref="Producer"/> scans the graph).</summary>
    public static Dictionary<string, NodeProto> ProducerIndex(GraphProto graph)
    {
        var producer = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var output in node.Output.Where(o => o.Length > 0)) producer[output] = node;
        return producer;
    }

    /// <summary>The nodes reading <paramref name="tensor"/>.</summary>
    public List<NodeProto> Consumers(string tensor) => Graph.Node.Where(n => n.Input.Contains(tensor)).ToList();

    /// <summary>The domain of ONNX Runtime's contrib ops (MatMulNBits, MatMulIntegerToFloat …).</summary>
    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>Declares <see cref="MicrosoftDomain"/> (version 1) among the model's opset imports, once: ONNX Runtime
    /// refuses a node of an undeclared domain.</summary>
    public void ImportMicrosoftDomain()
    {
        if (Model.OpsetImport.All(o => o.Domain != MicrosoftDomain))
            Model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
    }

    /// <summary>Whether <paramref name="tensor"/> is one of the graph's outputs.</summary>
    public bool IsGraphOutput(string tensor) => Graph.Output.Any(o => o.Name == tensor);

    /// <summary>Makes every node that reads <paramref name="from"/> read <paramref name="to"/> instead.</summary>
    public void ReplaceUses(string from, string to)
    {
        foreach (var node in Graph.Node)
            for (var i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == from) node.Input[i] = to;
    }

    /// <summary>Removes nodes none of whose outputs is read or is a graph output (repeatedly), then initializers
    /// nothing reads, and initializers listed as graph inputs (IR &lt; 4: they are constants here).</summary>
    public void RemoveUnused()
    {
        var outputs = Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        bool removed;
        do
        {
            var read = Graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
            var dead = Graph.Node.Where(n => n.Output.All(o => o.Length == 0 || (!read.Contains(o) && !outputs.Contains(o)))).ToList();
            foreach (var node in dead) Graph.Node.Remove(node);
            removed = dead.Count > 0;
        } while (removed);
        var used = Graph.Node.SelectMany(n => n.Input).Concat(outputs).ToHashSet(StringComparer.Ordinal);
        foreach (var unused in Graph.Initializer.Where(t => !used.Contains(t.Name)).ToList()) Graph.Initializer.Remove(unused);
        var initializers = Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var input in Graph.Input.Where(i => initializers.Contains(i.Name)).ToList()) Graph.Input.Remove(input);
    }

    /// <summary>The float attribute <paramref name="name"/> of <paramref name="node"/>, or <paramref name="fallback"/>.</summary>
    public static float Float(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;

    /// <summary>The int attribute <paramref name="name"/> of <paramref name="node"/>, or <paramref name="fallback"/>.</summary>
    public static long Int(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    /// <summary>The ints attribute <paramref name="name"/> of <paramref name="node"/>, or null.</summary>
    public static long[]? Ints(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray();

    /// <summary>Removes the attribute <paramref name="name"/> from <paramref name="node"/>, returning it (or null).</summary>
    public static AttributeProto? Take(NodeProto node, string name)
    {
        var attribute = node.Attribute.FirstOrDefault(a => a.Name == name);
        if (attribute is not null) node.Attribute.Remove(attribute);
        return attribute;
    }
}
