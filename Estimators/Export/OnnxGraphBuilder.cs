using Google.Protobuf;
using Onnx;

namespace MLNetQuant.Onnx;

/// <summary>Builds an ONNX model (opset 13 by default) node by node: initializers, nodes with attributes, graph inputs
/// and outputs with a symbolic batch dimension, and metadata. Names are made unique by a counter, so callers can
/// ask for "conv1.weight" twice without clashing.</summary>
public sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly Dictionary<string, int> _used = new(StringComparer.Ordinal);

    /// <summary>Starts an empty graph.</summary>
    public OnnxGraphBuilder() => _graph = new GraphProto { Name = "mlnetquant" };

    /// <summary>Writes into an existing graph: every name it already uses (tensors, nodes, initializers, inputs,
    /// outputs) is taken, so new names never clash. Nodes are appended: the caller re-adds the graph's own nodes with
    /// <see cref="Append"/> in order, new ones in between, to keep the order topological.</summary>
    internal OnnxGraphBuilder(GraphProto existing)
    {
        _graph = existing;
        foreach (var name in existing.Initializer.Select(t => t.Name).Concat(existing.Input.Select(i => i.Name))
                     .Concat(existing.Output.Select(o => o.Name)).Concat(existing.ValueInfo.Select(v => v.Name))
                     .Concat(existing.Node.SelectMany(n => n.Output.Append(n.Name))).Where(n => n.Length > 0))
            _used[name] = 1;
    }

    /// <summary>The node added last (to set what the Node helpers do not: a domain, a reused output name).</summary>
    internal NodeProto LastNode => _graph.Node[^1];

    /// <summary>Appends an existing node as it is (its names must already be reserved).</summary>
    internal void Append(NodeProto node) => _graph.Node.Add(node);

    /// <summary>ONNX element types used here (onnx.proto's TensorProto.DataType).</summary>
    public enum ElementType
    {
        /// <summary>float32.</summary>
        Float = 1,

        /// <summary>uint8.</summary>
        UInt8 = 2,

        /// <summary>int8.</summary>
        Int8 = 3,

        /// <summary>int32.</summary>
        Int32 = 6,

        /// <summary>int64.</summary>
        Int64 = 7,
    }

    /// <summary>Whether a tensor, node, initializer, input or output already uses <paramref name="name"/> (without
    /// reserving it).</summary>
    internal bool IsTaken(string name) => _used.ContainsKey(name);

    /// <summary>Returns <paramref name="name"/>, or it with a numeric suffix when already taken.</summary>
    public string Unique(string name)
    {
        if (!_used.TryGetValue(name, out var count))
        {
            _used[name] = 1;
            return name;
        }
        _used[name] = count + 1;
        return Unique($"{name}_{count}");
    }

    /// <summary>Adds a float32 initializer.</summary>
    public string Initializer(string name, float[] values, params long[] dims) =>
        AddInitializer(name, ElementType.Float, dims, t => t.FloatData.AddRange(values), values.Length);

    /// <summary>Adds an int8 initializer.</summary>
    public string Initializer(string name, sbyte[] values, params long[] dims) =>
        AddInitializer(name, ElementType.Int8, dims, t => t.RawData = ByteString.CopyFrom(values.Select(v => unchecked((byte)v)).ToArray()), values.Length);

    /// <summary>Adds a uint8 initializer.</summary>
    public string Initializer(string name, byte[] values, params long[] dims) =>
        AddInitializer(name, ElementType.UInt8, dims, t => t.RawData = ByteString.CopyFrom(values), values.Length);

    /// <summary>Adds an int32 initializer.</summary>
    public string Initializer(string name, int[] values, params long[] dims) =>
        AddInitializer(name, ElementType.Int32, dims, t => t.Int32Data.AddRange(values), values.Length);

    /// <summary>Adds an int64 initializer.</summary>
    public string Initializer(string name, long[] values, params long[] dims) =>
        AddInitializer(name, ElementType.Int64, dims, t => t.Int64Data.AddRange(values), values.Length);

    /// <summary>Copies an existing initializer under a unique name (its data untouched); returns the name.</summary>
    public string Initializer(TensorProto existing)
    {
        var copy = existing.Clone();
        copy.Name = Unique(existing.Name);
        _graph.Initializer.Add(copy);
        return copy.Name;
    }

    /// <summary>Adds a node with attributes copied from another model; returns its first output's name.</summary>
    public string Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<AttributeProto> attributes)
    {
        var nodeName = Unique(name);
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.AddRange(inputs);
        node.Output.Add(nodeName);
        node.Attribute.AddRange(attributes.Select(a => a.Clone()));
        _graph.Node.Add(node);
        return nodeName;
    }

    /// <summary>The float32 values of an initializer (raw_data or float_data).</summary>
    public static float[] Floats(TensorProto tensor)
    {
        if (tensor.DataType != (int)ElementType.Float)
            throw new NotSupportedException($"Initializer '{tensor.Name}' is not float32 (ONNX type {tensor.DataType}).");
        if (tensor.RawData.Length == 0) return tensor.FloatData.ToArray();
        var values = new float[tensor.RawData.Length / 4];
        Buffer.BlockCopy(tensor.RawData.ToByteArray(), 0, values, 0, values.Length * 4);
        return values;
    }

    /// <summary>Adds a node; returns its first output's name.</summary>
    /// <param name="opType">ONNX operator (Conv, QuantizeLinear …).</param>
    /// <param name="name">Base name for the node and its output.</param>
    /// <param name="inputs">Input tensor names ("" for an omitted optional input).</param>
    /// <param name="attributes">Attributes: long, float, long[], float[] or string values.</param>
    public string Node(string opType, string name, IEnumerable<string> inputs, IReadOnlyDictionary<string, object>? attributes = null)
    {
        var nodeName = Unique(name);
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.AddRange(inputs);
        node.Output.Add(nodeName);
        if (attributes is not null)
            foreach (var (key, value) in attributes) node.Attribute.Add(Attribute(key, value));
        _graph.Node.Add(node);
        return nodeName;
    }

    /// <summary>Declares a float32 graph input of shape [N, <paramref name="dims"/>…] with a symbolic batch N.</summary>
    public string Input(string name, params long[] dims)
    {
        _used[name] = 1;
        _graph.Input.Add(ValueInfo(name, ElementType.Float, dims));
        return name;
    }

    /// <summary>Declares a graph output of shape [N, <paramref name="dims"/>…] produced by <paramref name="source"/>.</summary>
    public void Output(string name, string source, ElementType type, params long[] dims)
    {
        if (source != name) Node("Identity", name, new[] { source });
        _graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Serialises the model.</summary>
    /// <param name="opset">The default-domain opset (13 for per-channel QDQ; 21 for int4).</param>
    /// <param name="metadata">Key/value pairs for metadata_props.</param>
    public byte[] Build(int opset, IReadOnlyDictionary<string, string> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = opset >= 21 ? 10 : 7,
            ProducerName = "MLNetQuant",
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "0",
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        foreach (var (key, value) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model.ToByteArray();
    }

    private string AddInitializer(string name, ElementType type, long[] dims, Action<TensorProto> fill, long count)
    {
        var expected = dims.Aggregate(1L, (a, b) => a * b);
        if (expected != count)
            throw new ArgumentException($"Initializer '{name}' has {count} values but dims [{string.Join(", ", dims)}] need {expected}.");
        var unique = Unique(name);
        var tensor = new TensorProto { Name = unique, DataType = (int)type };
        tensor.Dims.AddRange(dims);
        fill(tensor);
        _graph.Initializer.Add(tensor);
        return unique;
    }

    private static ValueInfoProto ValueInfo(string name, ElementType type, long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static AttributeProto Attribute(string name, object value)
    {
        var attribute = new AttributeProto { Name = name };
        switch (value)
        {
            case long l:
                attribute.Type = AttributeProto.Types.AttributeType.Int;
                attribute.I = l;
                break;
            case int i:
                attribute.Type = AttributeProto.Types.AttributeType.Int;
                attribute.I = i;
                break;
            case float f:
                attribute.Type = AttributeProto.Types.AttributeType.Float;
                attribute.F = f;
                break;
            case long[] ls:
                attribute.Type = AttributeProto.Types.AttributeType.Ints;
                attribute.Ints.AddRange(ls);
                break;
            case float[] fs:
                attribute.Type = AttributeProto.Types.AttributeType.Floats;
                attribute.Floats.AddRange(fs);
                break;
            case string s:
                attribute.Type = AttributeProto.Types.AttributeType.String;
                attribute.S = ByteString.CopyFromUtf8(s);
                break;
            default:
                throw new ArgumentException($"Attribute '{name}' has an unsupported type {value.GetType().Name}.");
        }
        return attribute;
    }
}
