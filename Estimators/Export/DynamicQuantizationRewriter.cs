using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>Rewrites a float graph for dynamic quantization, in the form ONNX Runtime fuses into its integer kernels:
/// <list type="bullet">
/// <item>MatMul/Gemm with a constant 2-D weight → DynamicQuantizeLinear(A) → MatMulInteger(A_q, W_int8) → Cast → Mul by
/// s_A·s_W[column] (→ Add the Gemm's bias). ORT fuses the chain into DynamicQuantizeMatMul / MatMulIntegerToFloat.
/// A tensor read by several quantized nodes (a transformer's Q, K and V projections) is quantized once.</item>
/// <item>Gather from a constant 2-D table along axis 0 → Gather of the int8 table, Cast, Mul by the gathered per-row
/// scales (or DequantizeLinear with one scale): only the looked-up rows are dequantized.</item>
/// </list>
/// Weights are symmetric int8 (zero-point 0) on [−127, 127] with scale max|w|/127, as ONNX Runtime's own
/// <c>quantize_dynamic</c> writes them (the static path follows PyTorch's [−128, 127], max|w|/127.5): the uint8×int8
/// kernels ORT runs fastest on x86 and ARM. This form was chosen
/// by measurement over the QDQ form (DynamicQuantizeLinear → DequantizeLinear on activation and weight → MatMul): on
/// all-MiniLM-L6-v2, batch 8×128, 2 threads, 2.05× ORT float against 1.58× (BENCHMARKS.md).</summary>
internal static class DynamicQuantizationRewriter
{
    // PyTorch's smallest scale (float32 eps): an all-zero column keeps a finite grid.
    private const float MinimumScale = 1.1920929e-07f;

    /// <summary>Rewrites <paramref name="model"/> in place; returns a report entry per quantized weight or table.</summary>
    public static List<QuantizedTensorReport> Rewrite(ModelProto model, ISet<string> opTypes, ISet<string> excluded, bool perChannel, bool reduceRange,
        IReadOnlyDictionary<string, int> elementTypes)
    {
        var graph = model.Graph;
        var onnx = new OnnxGraphBuilder(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var report = new List<QuantizedTensorReport>();
        var quantizedActivations = new Dictionary<string, (string Q, string Scale, string ZeroPoint)>(StringComparer.Ordinal);
        var qmax = reduceRange ? 63 : 127;
        QuantizedTensorReport WeightReport(NodeProto node, float[] scales) => new(node.Name, node.OpType, QuantType.Weight, reduceRange ? 7 : 8,
            perChannel ? QuantScheme.PerChannelSymmetric : QuantScheme.PerTensorSymmetric, QuantDtype.Int, scales, new long[scales.Length]);
        bool IsFloat(string tensor) => elementTypes.TryGetValue(tensor, out var type) && type == OnnxTensors.Float;
        TensorProto? Constant2D(string name) =>
            initializers.TryGetValue(name, out var t) && t.DataType == OnnxTensors.Float && t.Dims.Count == 2 ? t : null;

        // A [k, n] weight read through at(k, n) as int8 codes on per-column (or one) symmetric grids, reported with the
        // node's run-time-quantized input.
        (float[] Scales, sbyte[] Codes) QuantizeProjection(NodeProto node, int k, int n, Func<int, int, float> at)
        {
            var scales = ColumnScales(k, n, at, perChannel, qmax);
            var codes = new sbyte[k * n];
            for (var ki = 0; ki < k; ki++)
                for (var ni = 0; ni < n; ni++)
                    codes[ki * n + ni] = Round(at(ki, ni), scales[perChannel ? ni : 0], qmax);
            report.Add(WeightReport(node, scales));
            report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Input, 8, QuantScheme.PerTensorAffine, QuantDtype.UInt,
                Array.Empty<float>(), Array.Empty<long>()));
            return (scales, codes);
        }

        (string Q, string Scale, string ZeroPoint) QuantizeActivation(string tensor)
        {
            if (quantizedActivations.TryGetValue(tensor, out var done)) return done;
            var name = onnx.Unique($"{tensor}.dynamic_quantize");
            var node = new NodeProto { OpType = "DynamicQuantizeLinear", Name = name };
            node.Input.Add(tensor);
            node.Output.Add(onnx.Unique($"{name}.q"));
            node.Output.Add(onnx.Unique($"{name}.scale"));
            node.Output.Add(onnx.Unique($"{name}.zero_point"));
            onnx.Append(node);
            return quantizedActivations[tensor] = (node.Output[0], node.Output[1], node.Output[2]);
        }

        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        foreach (var node in nodes)
        {
            var selected = opTypes.Contains(node.OpType) && !excluded.Contains(node.Name) && node.Domain is "" or "ai.onnx";
            if (selected && MatMulWeight.Find(node, initializers, IsFloat) is { } tensor)
            {
                var weight = MatMulWeight.Read(node, tensor);
                var (k, n) = (weight.K, weight.N); // MatMulInteger takes W as [K, N]
                var (scales, ints) = QuantizeProjection(node, k, n, weight.At);

                var alpha = node.OpType == "Gemm" ? GraphEditor.Float(node, "alpha", 1f) : 1f;
                var (q, scale, zeroPoint) = QuantizeActivation(node.Input[0]);
                var weightName = onnx.Initializer($"{node.Name}.weight_quantized", ints, k, n);
                var weightZero = onnx.Initializer($"{node.Name}.weight_zero_point", new sbyte[] { 0 });
                var product = onnx.Node("MatMulInteger", $"{node.Name}.matmul_integer", new[] { q, weightName, zeroPoint, weightZero });
                var asFloat = onnx.Node("Cast", $"{node.Name}.cast", new[] { product }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Float });
                var weightScale = onnx.Initializer($"{node.Name}.weight_scale", scales.Select(s => s * alpha).ToArray(), scales.Length);
                var outputScale = onnx.Node("Mul", $"{node.Name}.output_scale", new[] { scale, weightScale });
                var hasBias = node.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0;
                var scaled = hasBias ? onnx.Node("Mul", $"{node.Name}.scaled", new[] { asFloat, outputScale }) : null;
                var last = new NodeProto { OpType = hasBias ? "Add" : "Mul", Name = onnx.Unique($"{node.Name}.dynamic") };
                if (hasBias)
                {
                    var beta = GraphEditor.Float(node, "beta", 1f);
                    var bias = beta == 1f ? node.Input[2] : onnx.Node("Mul", $"{node.Name}.beta_bias",
                        new[] { node.Input[2], onnx.Initializer($"{node.Name}.beta", new[] { beta }) });
                    last.Input.Add(scaled!);
                    last.Input.Add(bias);
                }
                else
                {
                    last.Input.Add(asFloat);
                    last.Input.Add(outputScale);
                }
                last.Output.Add(node.Output[0]);
                onnx.Append(last);
                continue;
            }
            if (opTypes.Contains("Attention") && !excluded.Contains(node.Name) && IsFusedAttention(node, initializers) is { } packed)
            {
                // com.microsoft Attention (a model ORT's transformer optimizer fused) → QAttention on the same inputs, its
                // input quantized at run time, its packed [hidden, 3·hidden] weight int8 — what quantize_dynamic writes.
                var values = OnnxTensors.Floats(packed);
                var (k, n) = ((int)packed.Dims[0], (int)packed.Dims[1]);
                var (scales, ints) = QuantizeProjection(node, k, n, (ki, ni) => values[ki * n + ni]);
                var (q, scale, zeroPoint) = QuantizeActivation(node.Input[0]);
                var attention = new NodeProto { OpType = "QAttention", Domain = GraphEditor.MicrosoftDomain, Name = onnx.Unique($"{node.Name}.dynamic") };
                attention.Input.AddRange(new[]
                {
                    q, onnx.Initializer($"{node.Name}.weight_quantized", ints, k, n), node.Input[2], scale,
                    onnx.Initializer($"{node.Name}.weight_scale", scales, scales.Length), node.Input.Count > 3 ? node.Input[3] : "", zeroPoint,
                    onnx.Initializer($"{node.Name}.weight_zero_point", new sbyte[scales.Length], scales.Length),
                });
                if (node.Input.Count > 4 && node.Input[4].Length > 0) attention.Input.Add(node.Input[4]); // past
                attention.Attribute.AddRange(node.Attribute.Select(a => a.Clone()));
                attention.Output.AddRange(node.Output);
                onnx.Append(attention);
                continue;
            }
            if (selected && node.OpType == "Gather" && GraphEditor.Int(node, "axis", 0) == 0 && Constant2D(node.Input[0]) is { } table)
            {
                var values = OnnxTensors.Floats(table);
                var (rows, width) = ((int)table.Dims[0], (int)table.Dims[1]);
                // One scale per row (per token): rows differ in norm, and only the looked-up rows' scales are read.
                var scales = ColumnScales(width, rows, (w, r) => values[r * width + w], perChannel, qmax);
                var ints = new sbyte[values.Length];
                for (var i = 0; i < values.Length; i++)
                    ints[i] = Round(values[i], scales[perChannel ? i / width : 0], qmax);
                report.Add(WeightReport(node, scales));
                var tableName = onnx.Initializer($"{node.Name}.table_quantized", ints, rows, width);
                var gathered = onnx.Node("Gather", $"{node.Name}.gather_quantized", new[] { tableName, node.Input[1] });
                var last = new NodeProto { Name = onnx.Unique($"{node.Name}.dynamic") };
                if (perChannel)
                {
                    var asFloat = onnx.Node("Cast", $"{node.Name}.cast", new[] { gathered }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Float });
                    var rowScales = onnx.Initializer($"{node.Name}.row_scale", scales, rows, 1);
                    var gatheredScales = onnx.Node("Gather", $"{node.Name}.gather_scale", new[] { rowScales, node.Input[1] });
                    last.OpType = "Mul";
                    last.Input.Add(asFloat);
                    last.Input.Add(gatheredScales);
                }
                else
                {
                    last.OpType = "DequantizeLinear";
                    last.Input.Add(gathered);
                    last.Input.Add(onnx.Initializer($"{node.Name}.table_scale", new[] { scales[0] }));
                    last.Input.Add(onnx.Initializer($"{node.Name}.table_zero_point", new sbyte[] { 0 }));
                }
                last.Output.Add(node.Output[0]);
                onnx.Append(last);
                continue;
            }
            onnx.Append(node);
        }
        new GraphEditor(model).RemoveUnused(); // the float weights and tables replaced
        graph.ValueInfo.Clear();
        return report;
    }

    // ONNX Runtime's QAttention takes what a com.microsoft Attention node holds when that node has a constant float
    // [hidden, 3·hidden] weight, a constant bias, at most mask_index and past besides, and no attribute QAttention lacks
    // (separate Q/K/V widths, an explicit scale, a relative position bias): the packed weight, or null to leave it float.
    private static readonly HashSet<string> QAttentionAttributes = new(StringComparer.Ordinal) { "num_heads", "unidirectional" };

    private static TensorProto? IsFusedAttention(NodeProto node, IReadOnlyDictionary<string, TensorProto> initializers)
    {
        if (node is not { OpType: "Attention", Domain: GraphEditor.MicrosoftDomain } || node.Input.Count < 3 || node.Input.Skip(5).Any(i => i.Length > 0)) return null;
        if (node.Attribute.Any(a => !QAttentionAttributes.Contains(a.Name))) return null;
        if (!initializers.TryGetValue(node.Input[1], out var weight) || weight.DataType != OnnxTensors.Float || weight.Dims.Count != 2 || weight.Dims[1] % 3 != 0) return null;
        return initializers.TryGetValue(node.Input[2], out var bias) && bias.DataType == OnnxTensors.Float && OnnxTensors.ElementCount(bias) == weight.Dims[1] ? weight : null;
    }

    // The grid point of value/scale: round half to even, saturated to [−qmax, qmax].
    private static sbyte Round(float value, float scale, int qmax) =>
        (sbyte)Math.Clamp(Math.Round(value / scale, MidpointRounding.ToEven), -qmax, qmax);

    // Symmetric scales of a [k, n] matrix read through at(k, n): one per column n, or one for all.
    private static float[] ColumnScales(int k, int n, Func<int, int, float> at, bool perColumn, int qmax)
    {
        var maxima = new double[perColumn ? n : 1];
        for (var ki = 0; ki < k; ki++)
            for (var ni = 0; ni < n; ni++)
            {
                var slot = perColumn ? ni : 0;
                maxima[slot] = Math.Max(maxima[slot], Math.Abs(at(ki, ni)));
            }
        return maxima.Select(m => Math.Max((float)(m / qmax), MinimumScale)).ToArray();
    }
}
