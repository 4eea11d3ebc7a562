using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Tensor ranks read off the graph's structure where shape inference gives up — a Reshape whose target shape
/// is computed (Shape → Gather → Unsqueeze → Concat) has the rank of that shape's length even when its values are only
/// known at run time. Covers graph inputs, initializers, Transpose, Unsqueeze with its axes, Reshape to a constant or
/// concatenated shape, Shape, Gather, Gemm, Flatten, MatMul and the elementwise ops (broadcast: the largest input rank);
/// anything else is unknown (null).</summary>
internal sealed class StructuralRanks
{
    private static readonly HashSet<string> Elementwise = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Where", "Cast", "Sqrt", "Erf", "Exp", "Relu", "Tanh", "Sigmoid", "Neg", "Abs",
        "Clip", "Equal", "Less", "Greater", "Not", "And", "Or", "Softmax", "LogSoftmax", "Identity", "Dropout",
    };

    private readonly Dictionary<string, NodeProto> _producer;
    private readonly Dictionary<string, TensorProto> _initializers;
    private readonly Dictionary<string, int> _known = new(StringComparer.Ordinal);

    public StructuralRanks(ModelProto model)
    {
        _producer = GraphEditor.ProducerIndex(model.Graph);
        _initializers = model.Graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var input in model.Graph.Input.Where(i => i.Type?.TensorType?.Shape is not null))
            _known[input.Name] = input.Type.TensorType.Shape.Dim.Count;
        foreach (var initializer in _initializers.Values) _known[initializer.Name] = initializer.Dims.Count;
    }

    /// <summary>The rank of <paramref name="tensor"/>, or null when the structure does not tell.</summary>
    public int? Of(string tensor) => Of(tensor, 0);

    private int? Of(string tensor, int depth)
    {
        if (_known.TryGetValue(tensor, out var rank)) return rank;
        if (depth > 64 || !_producer.TryGetValue(tensor, out var node) || node.Domain is not ("" or "ai.onnx")) return null;
        int? result = node.OpType switch
        {
            "Transpose" => GraphEditor.Ints(node, "perm")?.Length ?? Of(node.Input[0], depth + 1),
            "Unsqueeze" when GraphEditor.Ints(node, "axes") is { } axes => Of(node.Input[0], depth + 1) + axes.Length,
            "Unsqueeze" when node.Input.Count > 1 && _initializers.TryGetValue(node.Input[1], out var axes) => Of(node.Input[0], depth + 1) + (int)OnnxTensors.ElementCount(axes),
            "Reshape" => ShapeLength(node.Input[1]),
            "Shape" => 1,
            "Gemm" or "Flatten" => 2,
            "Gather" => Of(node.Input[0], depth + 1) + Of(node.Input[1], depth + 1) - 1,
            "MatMul" => Of(node.Input[0], depth + 1) is { } a && Of(node.Input[1], depth + 1) is { } b && a >= 2 && b >= 2 ? Math.Max(a, b) : null,
            _ when Elementwise.Contains(node.OpType) => node.Input.Where(i => i.Length > 0).Select(i => Of(i, depth + 1)).ToList() is var ranks && ranks.All(r => r is not null)
                ? ranks.Max() : null,
            _ => null,
        };
        if (result is { } found) _known[tensor] = found;
        return result;
    }

    // The length of a shape tensor: a constant's element count, or a Concat of constants and one-element pieces
    // (Unsqueeze of a scalar).
    private int? ShapeLength(string shape)
    {
        if (_initializers.TryGetValue(shape, out var constant)) return (int)OnnxTensors.ElementCount(constant);
        if (!_producer.TryGetValue(shape, out var concat) || concat.OpType != "Concat") return null;
        var length = 0;
        foreach (var piece in concat.Input)
        {
            if (_initializers.TryGetValue(piece, out var part)) length += (int)OnnxTensors.ElementCount(part);
            else if (_producer.TryGetValue(piece, out var p) && p.OpType == "Unsqueeze" && Of(p.Input[0]) == 0 &&
                     (GraphEditor.Ints(p, "axes")?.Length ?? (p.Input.Count > 1 && _initializers.TryGetValue(p.Input[1], out var a) ? (int)OnnxTensors.ElementCount(a) : 0)) == 1) length++;
            else return null;
        }
        return length;
    }
}
