using MLNetQuant.Core;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>The one Q/DQ writer of ONNX graphs: applies <see cref="QdqAnnotations"/> to a float graph in place —
/// QuantizeLinear→DequantizeLinear pairs on annotated tensors and node inputs, integer weights with DequantizeLinear,
/// int32 biases (scale s_in·s_w) where the input and weight are quantized, sign nodes for binarized tensors — and
/// propagates each grid up through the grid-preserving ops before it (one table) so the compute node that starts the
/// chain meets a QuantizeLinear and ONNX Runtime runs it as an integer kernel.</summary>
internal static class QdqGraphRewriter
{
    // Ops whose output, requantized on their input's grid, equals the requantized input: a QuantizeLinear after them
    // can move before them. Exact for Relu, MaxPool and the shape ops (they commute with a monotonic quantizer whose
    // grid holds 0); Clip qualifies for the ranges it is used with (ReLU6: its output's grid lies inside [min, max]).
    private static readonly HashSet<string> GridPreserving = new(StringComparer.Ordinal) { "Relu", "Clip", "MaxPool", "Flatten", "Reshape", "Identity" };

    /// <summary>Rewrites <paramref name="model"/>'s graph. <paramref name="names"/> maps tensors already renamed (graph
    /// inputs renamed to their columns) and receives every tensor this rewrite replaces by its dequantized form.</summary>
    /// <returns>For each node that reads a quantized tensor: the original tensor and the one it now reads.</returns>
    public static Dictionary<string, List<(string Original, string Fed)>> Rewrite(ModelProto model, OnnxGraphBuilder onnx, QdqAnnotations annotations,
        Dictionary<string, string> names)
    {
        var graph = model.Graph;
        var qdq = new QdqEmitter(onnx);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var requantize = PlanPropagation(graph, annotations, graphOutputs);
        var gridOf = new Dictionary<string, QParams>(StringComparer.Ordinal);
        var fed = new Dictionary<string, List<(string Original, string Fed)>>(StringComparer.Ordinal);
        // Readers of one tensor on one grid share its Q/DQ pair (a transformer's Q, K and V projections), also where
        // other readers read it float and the pair cannot move to the producer.
        var shared = new Dictionary<(string Tensor, QParams Grid), string>();
        string Map(string name) => name.Length == 0 ? name : names.TryGetValue(name, out var mapped) ? mapped : name;
        string QuantizeDequantize(string tensor, QParams grid, string name) =>
            qdq.QuantizeDequantize(tensor, grid.ScaleValues()[0], grid.ZeroPointValues()[0], grid.Spec.Range, grid.Spec.Dtype == QuantDtype.Int, name);

        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        foreach (var node in nodes)
        {
            var originalInputs = node.Input.ToArray();
            for (var i = 0; i < node.Input.Count; i++) node.Input[i] = Map(node.Input[i]);
            var weighted = OnnxOps.Weighted.Contains(node.OpType);
            annotations.Weights.TryGetValue(node.Name, out var weight);
            var padChannels = weight is null || weight.PackedInt4 ? 0 : ConvChannelPadding.ExtraChannels(node, weight);
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (!annotations.Inputs.TryGetValue((node.Name, i), out var grid)) continue;
                if (!gridOf.TryGetValue(node.Input[i], out var current) || !ReferenceEquals(current, grid))
                {
                    // The input is quantized here for this node alone, so it can gain the zero channels the fast
                    // kernel needs (a shared requantized tensor cannot: a Pad between DequantizeLinear and the Conv
                    // would stop the fusion).
                    var pad = i == 0 && padChannels > 0;
                    if (!pad && shared.TryGetValue((node.Input[i], grid), out var dequantized)) node.Input[i] = dequantized;
                    else
                    {
                        var source = pad ? ConvChannelPadding.PadInput(onnx, node.Input[i], weight!.Shape.Length, padChannels, node.Name) : node.Input[i];
                        var key = (node.Input[i], grid);
                        node.Input[i] = QuantizeDequantize(source, grid, weighted ? $"{node.Name}.input" : $"{node.Name}.input{i}");
                        if (pad) weight = ConvChannelPadding.PadWeight(weight!, padChannels);
                        else shared[key] = node.Input[i];
                    }
                }
                if (!fed.TryGetValue(node.Name, out var list)) fed[node.Name] = list = new List<(string, string)>();
                list.Add((originalInputs[i], node.Input[i]));
            }
            if (weight is not null)
            {
                node.Input[1] = qdq.DequantizedWeight(node.Name, weight.Ints, weight.Scales, weight.ZeroPoints, weight.Signed, weight.Shape, weight.Axis,
                    weight.PackedInt4);
                // ConvTranspose with groups shares its per-axis-1 scales across groups.
                var groups = node.OpType == "ConvTranspose" ? (int)GraphEditor.Int(node, "group", 1) : 1;
                var channelScales = Enumerable.Range(0, weight.Scales.Length * groups).Select(c => weight.Scales[c % weight.Scales.Length]).ToArray();
                if (node.OpType != "MatMul" && node.Input.Count > 2 && initializers.TryGetValue(originalInputs[2], out var bias) &&
                    annotations.Inputs.TryGetValue((node.Name, 0), out var inputGrid) && BiasPerChannel(bias, channelScales.Length))
                    node.Input[2] = qdq.Int32Bias(node.Name, OnnxTensors.Floats(bias), inputGrid.ScaleValues()[0], channelScales);
            }
            // A Relu whose input is already dequantized from a grid starting at 0, and whose output is requantized on that
            // same grid, changes nothing (every value is ≥ 0): it is dropped, so the compute node before it hands its
            // quantized output straight to the readers (ONNX Runtime otherwise removes the Relu itself but keeps a
            // DequantizeLinear→QuantizeLinear pair between the integer kernels — 9 such pairs in ResNet-18).
            if (node.OpType == "Relu" && node.Output.Count == 1 && !graphOutputs.Contains(node.Output[0]) &&
                gridOf.TryGetValue(node.Input[0], out var inputGrid0) && requantize.TryGetValue(node.Output[0], out var reluGrid) &&
                ReferenceEquals(inputGrid0, reluGrid) && StartsAtZero(reluGrid) && !annotations.Binarized.Contains(node.Output[0]) &&
                !annotations.Inputs.ContainsKey((node.Name, 0)))
            {
                names[node.Output[0]] = node.Input[0];
                continue;
            }
            onnx.Append(node);
            if (node.Output.Count == 0) continue;
            var output = node.Output[0];
            if (annotations.Binarized.Contains(output))
                names[output] = Binarize(onnx, output, $"{node.Name}.output");
            else if (requantize.TryGetValue(output, out var outputGrid))
            {
                var dq = QuantizeDequantize(output, outputGrid, $"{node.Name}.requant");
                names[output] = dq;
                gridOf[dq] = outputGrid;
                if (graphOutputs.Contains(output))
                {
                    // A requantized graph output (pooled features): the node writes a float tensor of its own and the
                    // output is the dequantized one, so ORT's integer kernel hands over only a DequantizeLinear.
                    var raw = onnx.Unique($"{output}.float");
                    new GraphEditor(model).ReplaceUses(output, raw); // the QuantizeLinear just written reads it
                    node.Output[0] = raw;
                    var identity = new NodeProto { OpType = "Identity", Name = onnx.Unique($"{output}.requantized") };
                    identity.Input.Add(dq);
                    identity.Output.Add(output);
                    onnx.Append(identity);
                    names[output] = output;
                }
            }
        }
        new GraphEditor(model).RemoveUnused(); // the float weights and biases replaced
        graph.ValueInfo.Clear();
        return fed;
    }

    // Where each grid is applied at the producer. A tensor annotated as a whole is requantized there, and so is the
    // chain of grid-preserving ops that leads to it (the compute node before the chain then meets a QuantizeLinear). A
    // node input annotated alone is moved to its producer only when every reader reads that tensor on the same grid
    // (or is such a chain reaching only them), so readers that compute in float still see the float tensor.
    private static Dictionary<string, QParams> PlanPropagation(GraphProto graph, QdqAnnotations annotations, HashSet<string> graphOutputs)
    {
        var producer = GraphEditor.ProducerIndex(graph);
        var readers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var input in node.Input.Where(i => i.Length > 0).Distinct())
                (readers.TryGetValue(input, out var list) ? list : readers[input] = new List<NodeProto>()).Add(node);
        var plan = new Dictionary<string, QParams>(StringComparer.Ordinal);

        bool AllReadOnGrid(string tensor, QParams grid) => !graphOutputs.Contains(tensor) && readers.TryGetValue(tensor, out var list) &&
            list.All(reader =>
                Enumerable.Range(0, reader.Input.Count).Where(k => reader.Input[k] == tensor)
                    .All(k => annotations.Inputs.TryGetValue((reader.Name, k), out var g) && ReferenceEquals(g, grid)) ||
                GridPreserving.Contains(reader.OpType) && reader.Output.Count == 1 && reader.Input[0] == tensor &&
                plan.TryGetValue(reader.Output[0], out var next) && ReferenceEquals(next, grid));

        void Walk(string tensor, QParams grid, bool exclusive)
        {
            var current = tensor;
            while (producer.TryGetValue(current, out var node) && node.Output.Count == 1)
            {
                if (exclusive && !AllReadOnGrid(current, grid)) break;
                plan.TryAdd(current, grid);
                if (!GridPreserving.Contains(node.OpType)) break;
                current = node.Input[0];
            }
        }

        foreach (var (tensor, grid) in annotations.Tensors) Walk(tensor, grid, exclusive: false);
        var nodes = graph.Node.ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var ((nodeName, index), grid) in annotations.Inputs)
        {
            var tensor = nodes[nodeName].Input[index];
            if (!annotations.Tensors.ContainsKey(tensor)) Walk(tensor, grid, exclusive: true);
        }
        return plan;
    }

    // Whether the lowest value of a per-tensor grid is exactly 0 (zero-point at the bottom of the range).
    private static bool StartsAtZero(QParams grid) => grid.ZeroPointValues()[0] == grid.Spec.Range.QMin;

    // Whether a bias initializer holds one value per output channel (what an int32 bias needs).
    private static bool BiasPerChannel(TensorProto bias, int channels) =>
        bias.DataType == OnnxTensors.Float && OnnxTensors.ElementCount(bias) == channels && bias.Dims.Count(d => d != 1) <= 1;

    // BNN's sign with 0 → +1 is not a rounding QuantizeLinear can express (it would send (−½, ½) to 0):
    // Where(x ≥ 0, 1, −1).
    private static string Binarize(OnnxGraphBuilder onnx, string x, string name)
    {
        var zero = onnx.Initializer($"{name}.zero", new[] { 0f });
        var plus = onnx.Initializer($"{name}.plus_one", new[] { 1f });
        var minus = onnx.Initializer($"{name}.minus_one", new[] { -1f });
        var nonNegative = onnx.Node("GreaterOrEqual", $"{name}.non_negative", new[] { x, zero });
        return onnx.Node("Where", $"{name}.sign", new[] { nonNegative, plus, minus });
    }
}
