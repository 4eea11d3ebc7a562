using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Carries a graph of the standard domain from its opset (7–12) to opset 13, the first with per-channel
/// QuantizeLinear/DequantizeLinear: rewrites the ops whose inputs, attributes or meaning changed on the way
/// (Clip, Softmax/LogSoftmax/Hardmax, Upsample, Resize-10, Slice, Squeeze, Unsqueeze, ReduceSum, Split, Pad, TopK,
/// Scatter, BatchNormalization's spatial), keeps the ops that read the same at 13, and names any other op it meets.
/// Models at opset 13 or later keep their opset: every opset up to 21 already has per-channel Q/DQ.</summary>
internal static class OpsetUpgrade
{
    /// <summary>The oldest opset imported.</summary>
    public const int MinimumOpset = 7;

    /// <summary>The newest opset imported.</summary>
    public const int MaximumOpset = 21;

    /// <summary>The opset older models are carried to.</summary>
    public const int TargetOpset = 13;

    // Ops whose every version between opset 7 and 13 takes the same inputs and attributes with the same meaning (later
    // versions only widened types or allowed negative axes).
    private static readonly HashSet<string> SameAt13 = new(StringComparer.Ordinal)
    {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool", "BitShift",
        "Cast", "Ceil", "Celu", "Clip", "Pad", "Slice", "TopK", "Compress", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose",
        "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Det", "Div", "DynamicQuantizeLinear", "Einsum", "Elu",
        "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gemm",
        "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "Identity",
        "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM", "LeakyRelu", "Less", "LessOrEqual", "Log", "LpNormalization",
        "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean", "MeanVarianceNormalization",
        "Min", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pow", "QLinearConv",
        "QLinearMatMul", "QuantizeLinear", "RNN", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape",
        "Resize", "ReverseSequence", "RoiAlign", "Round", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid",
        "Sign", "Sin", "Sinh", "Size", "Softplus", "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh",
        "ThresholdedRelu", "Tile", "Transpose", "Unique", "Where", "Xor", "Dropout", "CumSum", "Multinomial", "RandomNormal",
        "RandomNormalLike", "RandomUniform", "RandomUniformLike", "StringNormalizer", "TfIdfVectorizer",
        "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
        "SequenceErase", "SequenceInsert", "SequenceLength", "SplitToSequence", "ConcatFromSequence",
    };

    /// <summary>The default-domain opset the model imports.</summary>
    public static int OpsetOf(ModelProto model) =>
        (int)model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();

    /// <summary>Upgrades <paramref name="graph"/>'s model to opset 13 when older; returns how many nodes were rewritten.</summary>
    /// <exception cref="NotSupportedException">An opset outside 7–21, or an op this upgrade does not know, named with
    /// its node and opset.</exception>
    public static int Apply(GraphEditor graph, string source)
    {
        var opset = OpsetOf(graph.Model);
        if (opset is < MinimumOpset or > MaximumOpset)
            throw new NotSupportedException($"{source}: the model imports opset {opset} of the standard domain; opsets {MinimumOpset}–{MaximumOpset} are supported.");
        if (opset >= TargetOpset) return 0;
        var ranks = SoftmaxInputRanks(graph.Model, source);
        var nodes = graph.Graph.Node.ToList();
        graph.Graph.Node.Clear();
        var rewritten = 0;
        foreach (var node in nodes)
        {
            if (node.Domain is not ("" or "ai.onnx"))
            {
                graph.Graph.Node.Add(node);
                continue;
            }
            if (Rewrite(graph, node, opset, source, ranks)) rewritten++;
        }
        graph.Model.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version = TargetOpset;
        graph.Model.IrVersion = Math.Max(graph.Model.IrVersion, 7);
        return rewritten;
    }

    // Appends the opset-13 form of the node; returns whether it differs from the node as it came.
    private static bool Rewrite(GraphEditor graph, NodeProto node, int opset, string source, IReadOnlyDictionary<string, int> ranks)
    {
        switch (node.OpType)
        {
            case "Clip" when opset < 11:
                var min = GraphEditor.Take(node, "min");
                var max = GraphEditor.Take(node, "max");
                while (node.Input.Count > 1) node.Input.RemoveAt(node.Input.Count - 1);
                node.Input.Add(min is null ? "" : Scalar(graph, $"{node.Name}.min", min.F));
                if (max is not null) node.Input.Add(Scalar(graph, $"{node.Name}.max", max.F));
                graph.Graph.Node.Add(node);
                return true;
            case "Softmax" or "LogSoftmax" or "Hardmax":
                return CoercedSoftmax(graph, node, ranks.TryGetValue(node.Input[0], out var rank) ? rank : null);
            case "Upsample":
                return Upsample(graph, node, opset, source);
            case "Resize" when opset == 10:
                node.Input.Insert(1, "");
                SetResizeModes(graph, node, node.Input[2]);
                graph.Graph.Node.Add(node);
                return true;
            case "Slice" when opset < 10:
                var starts = GraphEditor.Take(node, "starts")!.Ints.ToArray();
                var ends = GraphEditor.Take(node, "ends")!.Ints.ToArray();
                var axes = GraphEditor.Take(node, "axes")?.Ints.ToArray();
                node.Input.Add(Longs(graph, $"{node.Name}.starts", starts));
                node.Input.Add(Longs(graph, $"{node.Name}.ends", ends));
                if (axes is not null) node.Input.Add(Longs(graph, $"{node.Name}.axes", axes));
                graph.Graph.Node.Add(node);
                return true;
            case "Squeeze" or "Unsqueeze" or "ReduceSum":
                var axesAttribute = GraphEditor.Take(node, "axes");
                if (axesAttribute is not null) node.Input.Add(Longs(graph, $"{node.Name}.axes", axesAttribute.Ints.ToArray()));
                graph.Graph.Node.Add(node);
                return true;
            case "Split":
                var split = GraphEditor.Take(node, "split");
                if (split is not null) node.Input.Add(Longs(graph, $"{node.Name}.split", split.Ints.ToArray()));
                graph.Graph.Node.Add(node);
                return true;
            case "Pad" when opset < 11:
                var pads = GraphEditor.Take(node, "pads")!.Ints.ToArray();
                var value = GraphEditor.Take(node, "value")?.F ?? 0f;
                node.Input.Add(Longs(graph, $"{node.Name}.pads", pads));
                node.Input.Add(Scalar(graph, $"{node.Name}.value", value));
                graph.Graph.Node.Add(node);
                return true;
            case "TopK" when opset < 10:
                var k = GraphEditor.Take(node, "k")!.I;
                node.Input.Add(Longs(graph, $"{node.Name}.k", new[] { k }));
                graph.Graph.Node.Add(node);
                return true;
            case "Scatter":
                node.OpType = "ScatterElements";
                graph.Graph.Node.Add(node);
                return true;
            case "BatchNormalization":
                var spatial = GraphEditor.Take(node, "spatial");
                if (spatial is { I: 0 })
                    throw new NotSupportedException($"{source}: node '{node.Name}' (BatchNormalization, opset {opset}) normalises per activation " +
                        "(spatial = 0), which opset 9 and later no longer express.");
                GraphEditor.Take(node, "is_test");
                GraphEditor.Take(node, "consumed_inputs");
                if (node.Output.Skip(1).Any(o => o.Length > 0 && (graph.Consumers(o).Count > 0 || graph.IsGraphOutput(o))))
                    throw new NotSupportedException($"{source}: node '{node.Name}' (BatchNormalization) has its training outputs read; only inference graphs are supported.");
                while (node.Output.Count > 1) node.Output.RemoveAt(node.Output.Count - 1);
                graph.Graph.Node.Add(node);
                return true;
            default:
                if (!SameAt13.Contains(node.OpType))
                    throw new NotSupportedException($"{source}: node '{node.Name}' ({node.OpType}) at opset {opset}: carrying it to opset " +
                        $"{TargetOpset} is not implemented.");
                graph.Graph.Node.Add(node);
                return false;
        }
    }

    // Before opset 13, Softmax(axis a) flattened its input to 2-D at a and normalised each row; at 13 it normalises
    // along a alone. The last axis (−1, or rank − 1 where the rank is known) means the same in both — a transformer's
    // attention scores: one node, which later passes can recognise; otherwise: Shape, Flatten(a), the op on the rows,
    // Reshape back.
    private static bool CoercedSoftmax(GraphEditor graph, NodeProto node, int? rank)
    {
        var axis = GraphEditor.Int(node, "axis", 1);
        GraphEditor.Take(node, "axis");
        node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 });
        if (axis == -1 || rank is { } known && axis == known - 1)
        {
            graph.Graph.Node.Add(node);
            return true;
        }
        var input = node.Input[0];
        var output = node.Output[0];
        var shape = Add(graph, "Shape", $"{node.Name}.shape", new[] { input });
        var flat = Add(graph, "Flatten", $"{node.Name}.flatten", new[] { input },
            new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = axis });
        node.Input[0] = flat;
        node.Output[0] = graph.Unique($"{node.Name}.rows");
        graph.Graph.Node.Add(node);
        var reshape = new NodeProto { OpType = "Reshape", Name = graph.Unique($"{node.Name}.reshape") };
        reshape.Input.Add(node.Output[0]);
        reshape.Input.Add(shape);
        reshape.Output.Add(output);
        graph.Graph.Node.Add(reshape);
        return true;
    }

    // The ranks of the inputs of Softmax-family nodes whose axis is not −1: read off the graph (which also knows a
    // Reshape to a computed shape, where ONNX Runtime's inference leaves the rank unknown — transformer exports split
    // heads that way), else by ORT's inference on the model as it came, run only when the graph does not tell (none
    // when neither does: those nodes then take the general form).
    private static Dictionary<string, int> SoftmaxInputRanks(ModelProto model, string source)
    {
        var inputs = model.Graph.Node.Where(n => n.OpType is "Softmax" or "LogSoftmax" or "Hardmax" && n.Domain is "" or "ai.onnx"
            && GraphEditor.Int(n, "axis", 1) != -1).Select(n => n.Input[0]).ToHashSet(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        if (inputs.Count == 0) return ranks;
        var structure = new StructuralRanks(model);
        foreach (var input in inputs)
            if (structure.Of(input) is { } known) ranks[input] = known;
        if (ranks.Count == inputs.Count) return ranks;
        try
        {
            foreach (var (name, value) in ShapeInference.Infer(model, source))
                if (inputs.Contains(name) && !ranks.ContainsKey(name) && value.Type.TensorType.Shape.Dim.Count > 0) ranks[name] = value.Type.TensorType.Shape.Dim.Count;
        }
        catch (InvalidOperationException)
        {
            // ORT cannot load the model as it came: keep the general form for those nodes.
        }
        return ranks;
    }

    // Upsample (scales as attribute at 7–8, as input at 9) is Resize with asymmetric coordinates and floor rounding.
    private static bool Upsample(GraphEditor graph, NodeProto node, int opset, string source)
    {
        var scalesAttribute = GraphEditor.Take(node, "scales");
        string scales;
        if (scalesAttribute is not null) scales = graph.AddInitializer(OnnxTensors.FromFloats($"{node.Name}.scales", scalesAttribute.Floats.ToArray(), scalesAttribute.Floats.Count));
        else if (node.Input.Count > 1) scales = node.Input[1];
        else throw new NotSupportedException($"{source}: node '{node.Name}' (Upsample, opset {opset}) has no scales.");
        var resize = new NodeProto { OpType = "Resize", Name = node.Name };
        resize.Input.Add(node.Input[0]);
        resize.Input.Add("");
        resize.Input.Add(scales);
        resize.Output.Add(node.Output[0]);
        var mode = node.Attribute.FirstOrDefault(a => a.Name == "mode")?.S.ToStringUtf8() ?? "nearest";
        resize.Attribute.Add(StringAttribute("mode", mode == "bilinear" ? "linear" : mode));
        SetResizeModes(graph, resize, scales);
        graph.Graph.Node.Add(resize);
        return true;
    }

    // Resize-10 and Upsample use asymmetric coordinates; nearest rounds down when enlarging and up when shrinking
    // (ONNX Runtime's "simple" mode), which Resize-13 spells floor or ceil.
    private static void SetResizeModes(GraphEditor graph, NodeProto node, string scales)
    {
        GraphEditor.Take(node, "coordinate_transformation_mode");
        GraphEditor.Take(node, "nearest_mode");
        node.Attribute.Add(StringAttribute("coordinate_transformation_mode", "asymmetric"));
        var values = graph.Initializer(scales) is { } tensor ? OnnxTensors.Floats(tensor) : Array.Empty<float>();
        node.Attribute.Add(StringAttribute("nearest_mode", values.Any(v => v < 1) ? "ceil" : "floor"));
    }

    private static string Add(GraphEditor graph, string opType, string name, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = graph.Unique(name) };
        node.Input.AddRange(inputs);
        node.Output.Add(graph.Unique(name));
        node.Attribute.AddRange(attributes);
        graph.Graph.Node.Add(node);
        return node.Output[0];
    }

    private static string Scalar(GraphEditor graph, string name, float value) => graph.AddInitializer(OnnxTensors.FromFloats(name, new[] { value }));

    private static string Longs(GraphEditor graph, string name, long[] values) =>
        graph.AddInitializer(OnnxTensors.FromLongs(name, values, values.Length));

    private static AttributeProto StringAttribute(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };
}
