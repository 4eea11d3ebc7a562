using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Export;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using MLNetQuant.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.OnnxPtq;

/// <summary>Quantizes an imported float ONNX model after training: finds the Conv/ConvTranspose/Gemm/MatMul nodes with
/// constant weights (and the optional elementwise and pooling ops), calibrates their float activation inputs in ONNX
/// Runtime over an IDataView with streaming observers (memory independent of the row count), and inserts Q/DQ into
/// the model's own graph (its inputs, outputs, opset and symbolic dimensions kept): int8 per-channel weights, Q/DQ
/// activations repeated over the Relu/MaxPool/Flatten/Reshape chain before each quantized node so ORT fuses, int32
/// bias. Graph inputs are renamed to the columns that feed them and the chosen outputs to their columns.</summary>
internal sealed class OnnxPostTrainingQuantizer
{
    // Values this large in an activation are masking constants (−∞, float.MinValue, −1e9 added to attention scores),
    // not signal: a tensor holding them stays float.
    private const float MaskMagnitude = 1e8f;

    // Activations that ONNX Runtime folds into the integer kernel before them when a QuantizeLinear follows.
    private static readonly HashSet<string> FusedActivations = new() { "Relu", "Clip" };

    private readonly OnnxModelOptions _options;
    private readonly OnnxQuantizationOptions? _static; // calibration settings (static quantization only)
    private readonly ModelProto _model;
    private readonly Dictionary<string, TensorProto> _initializers;
    private readonly Dictionary<string, int> _types;
    private readonly List<NodeProto> _targets;
    private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _graphOutputs;
    private readonly List<string> _outputTensors;
    // AdaRound's learned integer codes, by node; per-node weight bits (mixed precision), where not WeightBits.
    private readonly Dictionary<string, int[]> _learnedCodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _weightBits = new(StringComparer.Ordinal);
    private CrossLayerEqualization.Result? _equalization;

    public OnnxPostTrainingQuantizer(OnnxModelOptions options)
    {
        _options = options;
        _static = options as OnnxQuantizationOptions;
        _model = options.ReadModel();
        Import = OnnxImporter.Import(_model, options.ModelSource);
        _types = ShapeInference.ElementTypes(_model, ShapeInference.Infer(_model, options.ModelSource));
        _initializers = _model.Graph.Initializer.ToDictionary(t => t.Name);
        // Gather is not a Q/DQ target: its constant tables are rounded by the weight pass after the rewrite.
        _targets = _model.Graph.Node.Where(n => n.Domain is "" or "ai.onnx" && options.OpTypes.Contains(n.OpType) && n.OpType != "Gather" &&
            !options.ExcludedNodes.Contains(n.Name) && (IsWeighted(n) ? HasFloatWeight(n) : ActivationInputs(n).Any())).ToList();
        foreach (var node in _model.Graph.Node)
            foreach (var input in node.Input.Where(i => i.Length > 0))
                (_consumers.TryGetValue(input, out var list) ? list : _consumers[input] = new List<NodeProto>()).Add(node);
        _graphOutputs = _model.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        _outputTensors = _targets.Select(OutputTensor).OfType<string>().Distinct().ToList();
    }

    // The tensor a target's output becomes after a chain of single-consumer Relu/Clip nodes: it is calibrated and
    // requantized, so ONNX Runtime meets a QuantizeLinear after the node and runs it as an integer kernel with the
    // activation folded in. None for a float graph output (the model's scores stay exact).
    private string? OutputTensor(NodeProto node)
    {
        if (node.Output.Count != 1) return null;
        var tensor = node.Output[0];
        while (!_graphOutputs.Contains(tensor) && _consumers.TryGetValue(tensor, out var next) && next.Count == 1 &&
               FusedActivations.Contains(next[0].OpType) && next[0].Output.Count == 1)
            tensor = next[0].Output[0];
        // A pooled graph output (a feature extractor's embedding), when pooling is among OpTypes, is requantized too:
        // ORT then pools in int8 (no transpose back to NCHW for a float pool) at the cost of one 8-bit rounding of the
        // features on their own calibrated grid (ResNet-18: cosine 0.99660 → 0.99653, batch 32 about 3 % faster). Any
        // other model output (scores, logits) stays exact.
        if (_graphOutputs.Contains(tensor) && !(PoolingOps.Contains(node.OpType) && tensor == node.Output[0]) || !IsFloat(tensor)) return null;
        // A transformer's projection feeds a float bias Add (then LayerNorm, GELU, Softmax): requantizing its output
        // would only add a QuantizeLinear–DequantizeLinear pair; left float, ORT runs it as MatMulIntegerToFloat.
        var consumers = _consumers.TryGetValue(tensor, out var readers) ? readers : new List<NodeProto>();
        return consumers.Count > 0 && consumers.All(c => FloatArithmetic.Contains(c.OpType) && !_targets.Contains(c)) ? null : tensor;
    }

    // Pooling whose graph output may be requantized (see OutputTensor).
    private static readonly HashSet<string> PoolingOps = new(StringComparer.Ordinal) { "AveragePool", "GlobalAveragePool" };

    // Elementwise arithmetic that stays float unless it is itself quantized.
    private static readonly HashSet<string> FloatArithmetic = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div" };

    private OnnxQuantizationOptions Static => _static ?? throw new InvalidOperationException("Static quantization needs OnnxQuantizationOptions.");

    /// <summary>What the import did (opset, folded BatchNormalization nodes).</summary>
    public ImportSummary Import { get; }

    private static bool IsWeighted(NodeProto node) => OnnxOps.Weighted.Contains(node.OpType);

    private bool HasFloatWeight(NodeProto node) => node.Input.Count > 1 && _initializers.TryGetValue(node.Input[1], out var weight) &&
        weight.DataType == OnnxTensors.Float && weight.Dims.Count >= 2 && IsFloat(node.Input[0]) &&
        (node.OpType != "Gemm" || GraphEditor.Int(node, "transA", 0) == 0);

    private bool IsFloat(string tensor) => _types.TryGetValue(tensor, out var type) && type == OnnxTensors.Float;

    // The float tensors a target reads that get a Q/DQ pair: the data input of a weighted op, every non-constant float
    // input of an elementwise or pooling op.
    private IEnumerable<string> ActivationInputs(NodeProto node) => IsWeighted(node)
        ? new[] { node.Input[0] }
        : node.Input.Where(i => i.Length > 0 && !_initializers.ContainsKey(i) && IsFloat(i));

    /// <summary>Calibrates (unless <paramref name="weightOnly"/>) and writes the QDQ model; with an accuracy tolerance,
    /// <paramref name="evaluate"/> gives a candidate model's validation metric. Equalization and bias correction edit
    /// this quantizer's copy of the model: use one quantizer per Fit.</summary>
    public QuantizedModel Quantize(MLContext ml, IDataView data, bool weightOnly, Func<QuantizedModel, double>? evaluate = null)
    {
        var host = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register("MLNetQuant");
        using var log = host.Start("MLNetQuant");
        var bindings = InputBinding.Resolve(_model, data.Schema, _options.InputColumns, _options.FeatureColumnName, _options.InputShapes);
        var outputs = OutputColumns();
        log.Info(Microsoft.ML.Runtime.MessageSensitivity.None,
            $"ONNX {(weightOnly ? "Naive" : "Observer")}: opset {Import.SourceOpset}{(Import.Opset != Import.SourceOpset ? $" → {Import.Opset} ({Import.RewrittenNodes} node(s) rewritten)" : "")}, " +
            $"{_targets.Count} node(s) to quantize, {Import.FoldedBatchNorms} BatchNormalization node(s) folded.");
        var search = !weightOnly && Static.AccuracyTolerance is not null;
        var budget = weightOnly ? null : Static.WeightSizeBudget;
        // The float baseline is the model as given, before equalization rescales it; packaged as written, without
        // Finish's passes (they would give it int8 embedding tables).
        QuantizedModel? floatModel = null;
        if (search || budget is not null)
        {
            var (floatGraph, floatReport, _) = Rewrite(new Dictionary<string, QParams>(), false, bindings, outputs, new Dictionary<string, float[]>());
            floatModel = Package(floatGraph, floatReport, bindings, outputs);
        }
        if (!weightOnly && Static.CrossLayerEqualization)
        {
            var equalized = OnnxPtq.CrossLayerEqualization.Apply(_model, _options.ExcludedNodes.ToHashSet(StringComparer.Ordinal));
            _equalization = equalized;
            log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"cross-layer equalization: {equalized.Pairs} layer pair(s) equalized" +
                (equalized.Relu6Replaced > 0 ? $"; {equalized.Relu6Replaced} ReLU6 (Clip 0…6) between them replaced by ReLU (not scale-invariant)." : "."));
        }
        if (weightOnly && _static?.SmoothQuantAlpha is not null)
            log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, "SmoothQuantAlpha is not applied: SmoothQuant needs calibration data, and Naive reads none.");
        var smoothing = !weightOnly && Static.SmoothQuantAlpha is double alpha ? SmoothingFactors(data, bindings, alpha, log) : new Dictionary<string, float[]>();
        var grids = weightOnly ? new Dictionary<string, QParams>() : Calibrate(data, bindings, log, smoothing);
        var quantizedWeights = _targets.Where(t => IsWeighted(t) && (weightOnly || ActivationInputs(t).All(grids.ContainsKey))).ToList();
        MixedPrecisionReport? mixed = null;
        if (budget is double share)
        {
            // Widths first: AdaRound and bias correction then work on the chosen grids.
            void Widths(ISet<string> fourBit)
            {
                _weightBits.Clear();
                foreach (var node in fourBit) _weightBits[node] = 4;
            }
            var layers = quantizedWeights.Select(n => (n.Name, n.OpType, OnnxTensors.ElementCount(_initializers[n.Input[1]]))).ToList();
            var rows = Static.ValidationData ?? data;
            (var fourBit, mixed) = MixedPrecision.Choose(layers, share,
                set => { Widths(set); return Finish(Rewrite(grids, false, bindings, outputs, smoothing), bindings, outputs); },
                model => ScoreOutputs(model, rows, bindings, Static.SensitivityRows), floatModel!, log);
            Widths(fourBit);
        }
        if (!weightOnly && Static.AdaRound is not null) LearnRounding(data, bindings, smoothing, quantizedWeights, log);
        if (!weightOnly && Static.BiasCorrection) CorrectBiases(data, bindings, smoothing, quantizedWeights, log);

        ToleranceSearchReport? trail = null;
        HashSet<string>? floatNodes = null;
        if (search)
        {
            var layers = _targets.Where(t => ActivationInputs(t).All(grids.ContainsKey)).Select(t => (t.Name, t.OpType)).ToList();
            (floatNodes, trail) = ToleranceSearch.Run(layers,
                nodes => Finish(Rewrite(grids, false, bindings, outputs, smoothing, nodes), bindings, outputs),
                evaluate ?? throw new ArgumentNullException(nameof(evaluate)),
                model => ScoreOutputs(model, Static.ValidationData!, bindings, Static.SensitivityRows),
                floatModel!, Static, log);
        }

        var (model, report, fed) = Rewrite(grids, weightOnly, bindings, outputs, smoothing, floatNodes);
        report = report with { ToleranceSearch = trail, MixedPrecision = mixed };
        if (!weightOnly && Static.ErrorReportRows > 0)
        {
            var errors = LayerErrors(model, fed, data, bindings, smoothing);
            foreach (var worst in errors.Take(3))
                log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"quantization error: {worst.Node} ({worst.OpType}) SQNR {worst.SqnrDb:F1} dB");
            report = report with { LayerErrors = errors };
        }
        if (!weightOnly)
        {
            var census = KernelCensus.Run(Google.Protobuf.MessageExtensions.ToByteArray(model), _targets.Where(IsWeighted)
                .Where(t => report.Tensors.Any(r => r.Layer == t.Name && r.Tensor == QuantType.Input))
                .Select(t => (t.Name, t.OpType, OutputTensor(t) is { } o && grids.ContainsKey(o))));
            foreach (var kernel in census)
                log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"float kernel: {kernel.Node} ({kernel.OpType}): {kernel.Reason}");
            report = report with { FloatKernels = census };
        }
        return Finish((model, report, fed), bindings, outputs, log);
    }

    // The last passes every written static model takes (the CPU MatMul kernels, int8 embedding tables), then packaging.
    private QuantizedModel Finish((ModelProto Model, QuantizationReport Report, Dictionary<string, List<(string Original, string Fed)>> Fed) written,
        List<InputBinding> bindings, List<(string GraphOutput, string Column)> outputs, Microsoft.ML.Runtime.IChannel? log = null)
    {
        var (model, report, _) = written;
        if (_static?.CpuMatMulKernels == true && report.Tensors.Any(t => t.Tensor == QuantType.Input))
        {
            var lowered = IntegerMatMulLowering.Lower(model);
            log?.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"{lowered} MatMul node(s) written as MatMulIntegerToFloat with their bias (CpuMatMulKernels).");
            var attention = QuantizedAttentionFusion.Fuse(model);
            if (attention > 0)
                log?.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"{attention} self-attention block(s) written as QAttention (CpuMatMulKernels).");
        }
        if (_options.OpTypes.Contains("Gather"))
        {
            // Embedding tables: int8 rows, dequantized after the lookup — the same weight-only form as Dynamic's.
            var tables = DynamicQuantizationRewriter.Rewrite(model, new HashSet<string> { "Gather" }, _options.ExcludedNodes.ToHashSet(StringComparer.Ordinal),
                _options.PerChannelWeights, reduceRange: false, _types);
            report = report with { Tensors = report.Tensors.Concat(tables).ToList() };
        }
        return Package(model, report, bindings, outputs);
    }

    // The first output of a written model (inputs named after their columns) on the first rows of the data.
    private float[] ScoreOutputs(QuantizedModel model, IDataView data, List<InputBinding> bindings, int rows)
    {
        using var session = new InferenceSession(model.Onnx);
        using var runOptions = new RunOptions();
        using var reader = new InputBatchReader(data, bindings, Math.Min(rows, 256));
        var values = new List<float>();
        for (var read = 0; read < rows;)
        {
            var count = reader.Read(Math.Min(256, rows - read));
            if (count == 0) break;
            read += count;
            var inputs = reader.Values(count);
            try
            {
                using var result = session.Run(runOptions, model.InputColumns, inputs, new[] { model.OutputColumns[0] });
                values.AddRange(result[0].GetTensorDataAsSpan<float>().ToArray());
            }
            finally
            {
                foreach (var value in inputs) value.Dispose();
            }
        }
        if (values.Count == 0) throw new ArgumentException("The data to rank the layers on (ValidationData, else the calibration data) has no rows.",
            nameof(OnnxQuantizationOptions.ValidationData));
        return values.ToArray();
    }

    // AdaRound: each quantized weight's codes learned on its float inputs, one layer at a time (memory: one layer's
    // inputs over AdaRound.Rows rows).
    private void LearnRounding(IDataView data, List<InputBinding> bindings, Dictionary<string, float[]> smoothing, List<NodeProto> nodes,
        Microsoft.ML.Runtime.IChannel log)
    {
        var options = Static.AdaRound!;
        foreach (var (node, index) in nodes.Select((n, i) => (n, i)))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var plan = PlanWeight(node, smoothing);
            int[] codes;
            using (var inputs = LayerInputs(data, bindings, node, smoothing, options.Rows, log))
                codes = AdaRound.Round(node, Import.Opset, plan.Values, plan.Shape, plan.Scales, plan.Axis, plan.Spec.Range.QMin, plan.Spec.Range.QMax,
                    inputs, options);
            var flipped = codes.Zip(plan.RoundToNearest()).Count(p => p.First != p.Second);
            _learnedCodes[node.Name] = codes;
            log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"AdaRound {index + 1}/{nodes.Count}: {node.Name} ({node.OpType}, {plan.Spec.Bits} bits): " +
                $"{flipped} of {codes.Length} weights rounded away from nearest; {clock.Elapsed.TotalSeconds:F1} s.");
            _options.Progress?.Report(new QuantizationProgress("adaround", index + 1, nodes.Count, options.Iterations, options.Rows,
                double.NaN, double.NaN, double.NaN, clock.Elapsed, index + 1 == nodes.Count));
        }
    }

    // A node's data input (as the node reads it: divided by its SmoothQuant factors) over the first rows, batch first.
    private Tensor LayerInputs(IDataView data, List<InputBinding> bindings, NodeProto node, Dictionary<string, float[]> smoothing, int rows,
        Microsoft.ML.Runtime.IChannel log)
    {
        var batches = new List<Tensor>();
        try
        {
            StreamTensors(data, bindings, new[] { node.Input[0] }, Static.BatchSize, rows, log,
                (_, value, _) => batches.Add(AsNodeInput(value, smoothing.GetValueOrDefault(node.Input[0]))));
            return cat(batches, 0);
        }
        finally
        {
            foreach (var batch in batches) batch.Dispose();
        }
    }

    // A streamed activation as the node reading it sees it: divided by its SmoothQuant factors, if it has any.
    private static Tensor AsNodeInput(OrtValue value, float[]? factors)
    {
        var x = tensor(value.GetTensorDataAsSpan<float>().ToArray(), value.GetTensorTypeAndShape().Shape);
        if (factors is null) return x;
        using (x)
        using (var divisor = tensor(factors))
            return x.div(divisor);
    }

    // Bias correction: bias −= E[op(x, Ŵ − W)] per output channel over the calibration rows' float inputs. Every shift is
    // measured on the float model before any bias changes (a corrected bias upstream would shift the inputs downstream).
    private void CorrectBiases(IDataView data, List<InputBinding> bindings, Dictionary<string, float[]> smoothing, List<NodeProto> nodes,
        Microsoft.ML.Runtime.IChannel log)
    {
        var shifts = new List<(NodeProto Node, double[] Shift)>();
        foreach (var node in nodes.Where(n => n.OpType is "Conv" or "ConvTranspose" or "Gemm"))
        {
            var beta = node.OpType == "Gemm" ? GraphEditor.Float(node, "beta", 1f) : 1f;
            if (beta == 0f) continue; // a Gemm whose C is multiplied by 0 has no bias to correct
            var plan = PlanWeight(node, smoothing);
            var error = plan.Dequantize(_learnedCodes.TryGetValue(node.Name, out var learned) ? learned : plan.RoundToNearest());
            for (var i = 0; i < error.Length; i++) error[i] -= plan.Values[i];
            var sum = Array.Empty<double>();
            long count = 0;
            using var delta = tensor(error, plan.Shape);
            StreamTensors(data, bindings, new[] { node.Input[0] }, Static.BatchSize, Static.CalibrationRows, log, (_, value, _) =>
            {
                using var scope = NewDisposeScope();
                var x = AsNodeInput(value, smoothing.GetValueOrDefault(node.Input[0]));
                // Output channels are axis 1: [N, C, …] for Conv and ConvTranspose, [M, N] for Gemm.
                var shift = OnnxOps.Run(node, new Tensor?[] { x, delta }, Import.Opset)[0].to_type(ScalarType.Float64);
                var perChannel = shift.movedim(new[] { 1L }, new[] { 0L }).reshape(shift.shape[1], -1);
                var sums = perChannel.sum(new[] { 1L }).data<double>().ToArray();
                if (sum.Length == 0) sum = new double[sums.Length];
                for (var c = 0; c < sums.Length; c++) sum[c] += sums[c];
                count += perChannel.shape[1];
            });
            if (count > 0) shifts.Add((node, sum.Select(v => v / count / beta).ToArray()));
        }
        var editor = new GraphEditor(_model);
        foreach (var (node, shift) in shifts)
        {
            var bias = OwnBias(node, editor, shift.Length);
            var values = OnnxTensors.Floats(bias);
            for (var c = 0; c < shift.Length; c++) values[c] -= (float)shift[c];
            OnnxTensors.SetFloats(bias, values);
        }
        log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"bias correction: {shifts.Count} bias(es) corrected; " +
            $"largest shift {(shifts.Count == 0 ? 0 : shifts.Max(s => s.Shift.Max(Math.Abs))):G3}.");
    }

    // The node's bias as an initializer only it reads, of one value per output channel: its own, a copy of a shared or
    // broadcast one, or a new zero bias.
    private TensorProto OwnBias(NodeProto node, GraphEditor editor, int channels)
    {
        float[] values = new float[channels];
        if (node.Input.Count > 2 && node.Input[2].Length > 0)
        {
            if (!_initializers.TryGetValue(node.Input[2], out var existing) || existing.DataType != OnnxTensors.Float)
                throw new NotSupportedException($"Node '{node.Name}' ({node.OpType}): its bias '{node.Input[2]}' is not a float constant, so bias correction cannot adjust it; exclude the node or turn BiasCorrection off.");
            var readers = _consumers.TryGetValue(existing.Name, out var list) ? list.Count : 0;
            var current = OnnxTensors.Floats(existing);
            if (readers == 1 && current.Length == channels && existing.Dims.Count == 1) return existing;
            if (current.Length != 1 && current.Length != channels)
                throw new NotSupportedException($"Node '{node.Name}' ({node.OpType}): its bias '{node.Input[2]}' holds {current.Length} values, not one per output channel ({channels}); bias correction cannot adjust it.");
            for (var c = 0; c < channels; c++) values[c] = current.Length == 1 ? current[0] : current[c];
        }
        var tensorProto = OnnxTensors.FromFloats($"{node.Name}.corrected_bias", values, channels);
        editor.AddInitializer(tensorProto);
        _initializers[tensorProto.Name] = tensorProto;
        while (node.Input.Count < 2) node.Input.Add("");
        if (node.Input.Count == 2) node.Input.Add(tensorProto.Name);
        else node.Input[2] = tensorProto.Name;
        return tensorProto;
    }

    /// <summary>Writes the dynamically quantized model (<see cref="DynamicQuantizationOptions"/>): no data is read
    /// but the schema, to bind the inputs.</summary>
    public QuantizedModel QuantizeDynamic(MLContext ml, IDataView data)
    {
        var options = (DynamicQuantizationOptions)_options;
        return RewriteWithoutData(ml, data, "Dynamic", (model, _, log) =>
        {
            var report = DynamicQuantizationRewriter.Rewrite(model, options.OpTypes.ToHashSet(StringComparer.Ordinal),
                options.ExcludedNodes.ToHashSet(StringComparer.Ordinal), options.PerChannelWeights, options.ReduceRange, _types);
            if (options.CpuAttentionKernels && QuantizedAttentionFusion.Fuse(model) is var fused and > 0)
                log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"{fused} self-attention block(s) written as QAttention (CpuAttentionKernels).");
            return report;
        });
    }

    /// <summary>Writes the weight-only int4 model (<see cref="Int4QuantizationOptions"/>): no data is read but the
    /// schema, to bind the inputs.</summary>
    public QuantizedModel QuantizeInt4(MLContext ml, IDataView data)
    {
        var options = (Int4QuantizationOptions)_options;
        var gptq = options.Rounding == Int4Rounding.Gptq;
        return RewriteWithoutData(ml, data, gptq ? "Int4 GPTQ" : "Int4", (model, bindings, log) =>
        {
            var hessians = gptq ? Hessians(data, bindings, options, log) : new Dictionary<string, Tensor>();
            try
            {
                return Int4WeightRewriter.Rewrite(model, options.OpTypes.ToHashSet(StringComparer.Ordinal), options.ExcludedNodes.ToHashSet(StringComparer.Ordinal),
                    options.BlockSize, options.Symmetric, options.AccuracyLevel, _types, hessians);
            }
            finally
            {
                foreach (var hessian in hessians.Values) hessian.Dispose();
            }
        });
    }

    // The weight quantizers (Dynamic, Int4): rewrite a copy of the model (reading data only for GPTQ's statistics), then
    // bind its inputs to the columns and name its outputs.
    private QuantizedModel RewriteWithoutData(MLContext ml, IDataView data, string algorithm,
        Func<ModelProto, List<InputBinding>, Microsoft.ML.Runtime.IChannel, List<QuantizedTensorReport>> rewrite)
    {
        var host = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register("MLNetQuant");
        using var log = host.Start("MLNetQuant");
        var bindings = InputBinding.Resolve(_model, data.Schema, _options.InputColumns, _options.FeatureColumnName, _options.InputShapes);
        var outputs = OutputColumns();
        var model = _model.Clone();
        var tensors = rewrite(model, bindings, log);
        // Inputs are renamed after the rewrite, which looks tensors up by their original names.
        var onnx = new OnnxGraphBuilder(model.Graph);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        InputBinding.RenameToColumns(model, onnx, bindings, names);
        var editor = new GraphEditor(model);
        foreach (var (original, column) in names) editor.ReplaceUses(original, column);
        NameOutputs(model, onnx, outputs);
        var report = new QuantizationReport(QuantizationReport.CurrentFormatVersion, algorithm, tensors);
        var layers = tensors.Where(t => t.Tensor == QuantType.Weight).GroupBy(t => t.OpType).Select(g => $"{g.Count()} {g.Key}");
        log.Info(Microsoft.ML.Runtime.MessageSensitivity.None,
            $"ONNX {algorithm}: opset {Import.SourceOpset}{(Import.Opset != Import.SourceOpset ? $" → {Import.Opset}" : "")}, quantized {string.Join(", ", layers)}.");
        return Package(model, report, bindings, outputs);
    }

    // The written model as the estimator takes it: producer and report in the file, the columns it reads and writes, and
    // the shapes ML.NET must feed for symbolic dimensions.
    private QuantizedModel Package(ModelProto model, QuantizationReport report, List<InputBinding> bindings, List<(string GraphOutput, string Column)> outputs)
    {
        model.ProducerName = "MLNetQuant";
        model.ProducerVersion = typeof(OnnxPostTrainingQuantizer).Assembly.GetName().Version?.ToString() ?? "0";
        model.MetadataProps.Add(new StringStringEntryProto { Key = QuantizationReport.MetadataKey, Value = report.ToJson() });
        return new QuantizedModel(Google.Protobuf.MessageExtensions.ToByteArray(model), report, bindings.Select(b => b.Column).ToArray(),
            outputs.Select(o => o.Column).ToArray(), InputBinding.MlNetShapes(_model, bindings));
    }

    /// <summary>The graph outputs that become columns, and their column names.</summary>
    internal List<(string GraphOutput, string Column)> OutputColumns()
    {
        if (_options.OutputColumns.Count == 0) return new() { (_model.Graph.Output[0].Name, _options.ScoreColumnName) };
        var missing = _options.OutputColumns.Keys.Where(k => _model.Graph.Output.All(o => o.Name != k)).ToArray();
        if (missing.Length > 0)
            throw new ArgumentException($"OutputColumns names {string.Join(", ", missing.Select(m => $"'{m}'"))}, which the model does not output; " +
                $"its outputs are {string.Join(", ", _model.Graph.Output.Select(o => $"'{o.Name}'"))}.", nameof(OnnxQuantizationOptions.OutputColumns));
        return _model.Graph.Output.Where(o => _options.OutputColumns.ContainsKey(o.Name)).Select(o => (o.Name, _options.OutputColumns[o.Name])).ToList();
    }

    /// <summary>Each graph input, the column feeding it and that column's item type.</summary>
    internal IEnumerable<(string GraphInput, string Column, Microsoft.ML.Data.PrimitiveDataViewType ItemType)> InputColumns() =>
        InputBinding.Columns(_model, _options.InputColumns, _options.FeatureColumnName);

    /// <summary>The output columns and their types: a vector of the output's element type, of known size when every
    /// dimension after the batch is fixed.</summary>
    internal List<(string Name, Microsoft.ML.Data.DataViewType Type)> OutputColumnTypes() => OutputColumns().Select(o =>
    {
        var tensorType = _model.Graph.Output.Single(v => v.Name == o.GraphOutput).Type.TensorType;
        var item = InputBinding.ItemTypeOf(tensorType.ElemType) ?? throw new NotSupportedException(
            $"Model output '{o.GraphOutput}' has ONNX element type {tensorType.ElemType}; float, double, int64, int32 and bool outputs are supported.");
        var dims = tensorType.Shape?.Dim.Skip(1).Select(d => d.DimValue).ToArray() ?? Array.Empty<long>();
        var size = dims.All(d => d > 0) ? checked((int)dims.Aggregate(1L, (a, b) => a * b)) : 0;
        return (o.Column, (Microsoft.ML.Data.DataViewType)new Microsoft.ML.Data.VectorDataViewType(item, size));
    }).ToList();

    // SQNR of the quantized activations each node consumes (float model's tensor against the dequantized one the QDQ
    // model feeds it, which carries the error of every layer before), on the first ErrorReportRows rows.
    private List<LayerError> LayerErrors(ModelProto quantized, Dictionary<string, List<(string Original, string Fed)>> fed, IDataView data,
        List<InputBinding> bindings, Dictionary<string, float[]> smoothing)
    {
        var pairs = fed.SelectMany(f => f.Value.Select(v => (Node: f.Key, v.Original, v.Fed))).ToList();
        if (pairs.Count == 0) return new List<LayerError>(); // every node left float (a tolerance search can end so)
        var originals = pairs.Select(p => p.Original).Distinct().ToList();
        var fedNames = pairs.Select(p => p.Fed).Distinct().ToList();
        var floatProbe = _model.Clone();
        // The float reference of a smoothed input is X/s: the same Mul, in float.
        Smooth(floatProbe, new OnnxGraphBuilder(floatProbe.Graph), smoothing, fed.Keys.ToHashSet(StringComparer.Ordinal));
        ExposeOutputs(floatProbe, originals);
        var quantizedProbe = quantized.Clone();
        ExposeOutputs(quantizedProbe, fedNames);

        using var reader = new InputBatchReader(data, bindings, Static.ErrorReportRows);
        var count = reader.Read(Static.ErrorReportRows);
        if (count == 0) return new List<LayerError>();
        using var floatSession = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(floatProbe));
        using var quantizedSession = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(quantizedProbe));
        var floatInputs = reader.Values(count);
        var quantizedInputs = reader.Values(count);
        try
        {
            using var runOptions = new RunOptions();
            using var floatOutputs = floatSession.Run(runOptions, reader.InputNames, floatInputs, originals);
            using var quantizedOutputs = quantizedSession.Run(runOptions, bindings.Select(b => b.Column).ToArray(), quantizedInputs, fedNames);
            var errors = new List<LayerError>();
            foreach (var node in _targets.Where(n => fed.ContainsKey(n.Name)))
            {
                double signal = 0, noise = 0;
                foreach (var (_, original, fedName) in pairs.Where(p => p.Node == node.Name))
                {
                    var xValue = floatOutputs[originals.IndexOf(original)];
                    var yValue = quantizedOutputs[fedNames.IndexOf(fedName)];
                    var x = xValue.GetTensorDataAsSpan<float>();
                    var y = yValue.GetTensorDataAsSpan<float>();
                    // A Conv input padded with zero channels for the fast kernel (ConvChannelPadding) holds more values:
                    // compare each original block of channels with the same channels of the padded one.
                    var (block, paddedBlock) = x.Length == y.Length ? (x.Length, y.Length) : ChannelBlocks(xValue, yValue);
                    for (var b = 0; b < x.Length / block; b++)
                        for (var k = 0; k < block; k++)
                        {
                            double xk = x[b * block + k], yk = y[b * paddedBlock + k];
                            signal += xk * xk;
                            noise += (xk - yk) * (xk - yk);
                        }
                }
                errors.Add(new LayerError(node.Name, node.OpType, Math.Round(10 * Math.Log10((signal + 1e-30) / (noise + 1e-30)), 2)));
            }
            return errors.OrderBy(e => e.SqnrDb).ToList();
        }
        finally
        {
            foreach (var value in floatInputs.Concat(quantizedInputs)) value.Dispose();
        }
    }

    // SmoothQuant (Xiao et al., 2023): per input channel k of each activation X read by quantized MatMul/Gemm weights,
    // s_k = max|X_k|^α / max|W_k,:|^(1−α). X/s is quantized (its outlier channels tamed) and W's rows are multiplied
    // by s, so the product is unchanged in float while both operands suit an 8-bit grid. A tensor also requantized as
    // some node's output keeps its grid (no factor).
    private Dictionary<string, float[]> SmoothingFactors(IDataView data, List<InputBinding> bindings, double alpha, Microsoft.ML.Runtime.IChannel log)
    {
        var readers = _targets.Where(t => t.OpType is "MatMul" or "Gemm" && IsWeighted(t) && _initializers[t.Input[1]].Dims.Count == 2)
            .GroupBy(t => t.Input[0]).Where(g => !_outputTensors.Contains(g.Key)).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        // The paper's scope: the activations a normalization writes (a transformer's QKV and first FFN inputs, where the
        // outlier channels are) and graph inputs. Smoothing MiniLM's attention-context and post-GELU inputs as well
        // cost 7 % of the speed and lowered the embedding cosine (0.9957 → 0.9921; BENCHMARKS.md).
        var producer = GraphEditor.ProducerIndex(_model.Graph);
        foreach (var key in readers.Keys.Where(k => !NormalizationOutput(k, producer)).ToList()) readers.Remove(key);
        if (readers.Count == 0) return new Dictionary<string, float[]>();
        var tensors = readers.Keys.ToList();
        var absMax = new Dictionary<string, double[]>(StringComparer.Ordinal);
        StreamTensors(data, bindings, tensors, Static.BatchSize, Static.CalibrationRows, log, (name, value, rows) =>
        {
            using var scope = NewDisposeScope();
            var shape = value.GetTensorTypeAndShape().Shape;
            var channels = tensor(value.GetTensorDataAsSpan<float>().ToArray(), shape).reshape(-1, shape[^1]).abs().amax(0).to(ScalarType.Float64).data<double>().ToArray();
            if (!absMax.TryGetValue(name, out var known)) absMax[name] = channels;
            else for (var k = 0; k < known.Length; k++) known[k] = Math.Max(known[k], channels[k]);
        });
        var factors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, nodes) in readers)
        {
            var x = absMax[name];
            if (x.Any(v => !double.IsFinite(v)) || WeightRowMaxima(nodes, x.Length) is not { } w) continue; // masking constants; not [.., K] × [K, N]
            factors[name] = x.Zip(w, (xk, wk) => xk > 0 && wk > 0 ? (float)Math.Clamp(Math.Pow(xk, alpha) / Math.Pow(wk, 1 - alpha), 1e-5, 1e5) : 1f).ToArray();
        }
        log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"SmoothQuant (α = {alpha}): {factors.Count} activation(s) smoothed into their MatMul/Gemm weights.");
        return factors;
    }

    // Whether a normalization writes the tensor — LayerNormalization, RMSNormalization, ORT's fused forms, or the
    // exporters' LayerNorm decomposition ending in Mul γ, Add β — or it is a graph input.
    private bool NormalizationOutput(string tensor, Dictionary<string, NodeProto> producer)
    {
        if (!producer.TryGetValue(tensor, out var writer)) return true; // a graph input
        if (writer.OpType is "LayerNormalization" or "RMSNormalization" or "SkipLayerNormalization" or "SimplifiedLayerNormalization"
            or "SkipSimplifiedLayerNormalization") return true;
        return writer.OpType == "Add" && writer.Input.Count(_initializers.ContainsKey) == 1 &&
            producer.TryGetValue(writer.Input.First(i => !_initializers.ContainsKey(i)), out var scale) && scale.OpType == "Mul" &&
            scale.Input.Count(_initializers.ContainsKey) == 1;
    }

    // max|W[k, :]| over every reader's weight, per input channel k; null when a weight's K is not the activation's.
    private double[]? WeightRowMaxima(List<NodeProto> readers, int k)
    {
        var maxima = new double[k];
        foreach (var node in readers)
        {
            var weight = MatMulWeight.Read(node, _initializers[node.Input[1]]);
            if (weight.K != k) return null;
            for (var i = 0; i < weight.Values.Length; i++)
                maxima[weight.InputChannelOf(i)] = Math.Max(maxima[weight.InputChannelOf(i)], Math.Abs(weight.Values[i]));
        }
        return maxima;
    }

    private Dictionary<string, QParams> Calibrate(IDataView data, List<InputBinding> bindings, Microsoft.ML.Runtime.IChannel log, Dictionary<string, float[]> smoothing)
    {
        // The calibration model also returns each quantized node's activation input.
        var tensors = _targets.SelectMany(ActivationInputs).Concat(_outputTensors).Distinct().ToList();
        var spec = Static.SymmetricActivations
            ? new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric)
            : QuantSpec.UInt8PerTensorAffineActivations;
        var observers = tensors.ToDictionary(t => t, _ => ActivationObservers.Create(Static.Calibration, spec, Static.Percentile));
        try
        {
            var infinite = new HashSet<string>(StringComparer.Ordinal);
            StreamTensors(data, bindings, tensors, Static.BatchSize, Static.CalibrationRows, log, (name, value, rows) =>
            {
                if (infinite.Contains(name)) return;
                // A scope holds every temporary: a chained call's intermediate tensor (values.abs() in
                // values.abs().max()) is otherwise unreachable during the next native call, and its finalizer
                // can free it mid-call (seen: a crash inside at::native::max).
                using var scope = NewDisposeScope();
                var values = tensor(value.GetTensorDataAsSpan<float>().ToArray(), value.GetTensorTypeAndShape().Shape);
                if (values.isnan().any().item<bool>())
                    throw new ArgumentException($"The model's tensor '{name}' is NaN on calibration rows {rows}; " +
                        "check those rows of the input columns (a NaN feature propagates).");
                if (values.abs().max().item<float>() >= MaskMagnitude)
                {
                    // ±∞ or a masking constant by design (an attention mask added to the scores): no 8-bit
                    // grid can hold it next to the real values.
                    infinite.Add(name);
                    return;
                }
                // A smoothed activation is quantized divided by its factors (SmoothingFactors): observe it so.
                observers[name].Observe(smoothing.TryGetValue(name, out var factors) ? values.div(tensor(factors)) : values);
            });
            foreach (var name in infinite)
                log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"left float: tensor '{name}' holds values of magnitude ≥ 1e8 or infinite " +
                    "(a masking constant, for instance in attention), which no 8-bit grid can represent next to its signal; the nodes reading it keep float inputs.");
            return observers.Where(o => !infinite.Contains(o.Key)).ToDictionary(o => o.Key, o => ChannelRange.CpuCopy(o.Value.ComputeQParams()));
        }
        finally
        {
            foreach (var observer in observers.Values) observer.Dispose();
        }
    }

    /// <summary>Runs the float model with <paramref name="tensors"/> exposed as outputs in ONNX Runtime over up to <paramref name="maxRows"/> rows of <paramref name="data"/> (0: all), batch by batch, and hands
    /// each exposed tensor of each batch to <paramref name="observe"/> with the batch's row range ("1–64"); reports
    /// progress as "calibrate".</summary>
    private void StreamTensors(IDataView data, List<InputBinding> bindings, IReadOnlyList<string> tensors, int batchSize, long maxRows,
        Microsoft.ML.Runtime.IChannel log, Action<string, OrtValue, string> observe)
    {
        var probe = _model.Clone();
        ExposeOutputs(probe, tensors);
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(probe));
        using var runOptions = new RunOptions();
        using var reader = new InputBatchReader(data, bindings, batchSize);
        long rows = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var wanted = maxRows == 0 ? batchSize : (int)Math.Min(batchSize, maxRows - rows);
            var count = wanted > 0 ? reader.Read(wanted) : 0;
            if (count == 0) break;
            rows += count;
            var inputs = reader.Values(count);
            try
            {
                using var outputs = session.Run(runOptions, reader.InputNames, inputs, tensors);
                for (var i = 0; i < tensors.Count; i++) observe(tensors[i], outputs[i], $"{rows - count + 1}–{rows}");
            }
            finally
            {
                foreach (var value in inputs) value.Dispose();
            }
            var last = count < wanted;
            var progress = new QuantizationProgress("calibrate", 1, 1, (rows + batchSize - 1) / batchSize, rows,
                double.NaN, double.NaN, rows / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), clock.Elapsed, last);
            _options.Progress?.Report(progress);
            log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"{progress} ({tensors.Count} tensors observed)");
            if (last) break;
        }
        if (rows == 0) throw new InvalidOperationException("The calibration data has no rows.");
    }

    /// <summary>For GPTQ: H = Σ xᵀx (float64, [K, K]) of each float input of the MatMul/Gemm nodes the int4 rewriter will
    /// quantize, over the calibration rows — the second moments that say which weight errors the next layer sees.</summary>
    private Dictionary<string, Tensor> Hessians(IDataView data, List<InputBinding> bindings, Int4QuantizationOptions options, Microsoft.ML.Runtime.IChannel log)
    {
        var tensors = _model.Graph.Node.Where(n => options.OpTypes.Contains(n.OpType) && !options.ExcludedNodes.Contains(n.Name) &&
                MatMulWeight.Find(n, _initializers, IsFloat) is not null)
            .Select(n => n.Input[0]).Distinct().ToList();
        var hessians = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            StreamTensors(data, bindings, tensors, options.BatchSize, options.CalibrationRows, log, (name, value, rows) =>
            {
                using var scope = NewDisposeScope();
                var shape = value.GetTensorTypeAndShape().Shape;
                var x = tensor(value.GetTensorDataAsSpan<float>().ToArray(), shape).reshape(-1, shape[^1]).to(ScalarType.Float64);
                if (!x.isfinite().all().item<bool>())
                    throw new ArgumentException($"The model's tensor '{name}' is NaN or infinite on calibration rows {rows}; " +
                        "check those rows of the input columns (a NaN feature propagates).");
                var product = x.t().matmul(x);
                if (hessians.TryGetValue(name, out var sum)) sum.add_(product, CachedScalars.One);
                else hessians[name] = product.MoveToOuterDisposeScope();
            });
            return hessians;
        }
        catch
        {
            foreach (var h in hessians.Values) h.Dispose();
            throw;
        }
    }

    // Makes intermediate float tensors graph outputs, so ONNX Runtime returns them.
    private static void ExposeOutputs(ModelProto model, IEnumerable<string> tensors)
    {
        foreach (var name in tensors.Where(t => model.Graph.Output.All(o => o.Name != t)))
            model.Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxTensors.Float } } });
    }

    private (ModelProto, QuantizationReport, Dictionary<string, List<(string Original, string Fed)>>) Rewrite(Dictionary<string, QParams> grids,
        bool weightOnly, List<InputBinding> bindings, List<(string GraphOutput, string Column)> outputs, Dictionary<string, float[]> smoothing,
        ISet<string>? floatNodes = null)
    {
        // A target whose activation input could not be calibrated (infinite values) stays float; in weight-only mode
        // the weighted targets are rounded and nothing else changes. The tolerance search leaves floatNodes float.
        var quantizedTargets = _targets.Where(t => (weightOnly ? IsWeighted(t) : ActivationInputs(t).All(grids.ContainsKey)) &&
            floatNodes?.Contains(t.Name) != true).ToList();
        var wanted = quantizedTargets.SelectMany(ActivationInputs).Concat(quantizedTargets.Select(OutputTensor).OfType<string>()).ToHashSet(StringComparer.Ordinal);
        grids = grids.Where(g => wanted.Contains(g.Key)).ToDictionary(g => g.Key, g => g.Value, StringComparer.Ordinal);
        var algorithm = AlgorithmName(weightOnly);
        var model = _model.Clone();
        var onnx = new OnnxGraphBuilder(model.Graph);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        InputBinding.RenameToColumns(model, onnx, bindings, names);
        var quantizedNames = quantizedTargets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        Smooth(model, onnx, smoothing, quantizedNames);

        // Annotations: every calibrated tensor is requantized where it is produced (one grid per tensor, as calibrated);
        // each quantized node reads its activation inputs on those grids; weights become int8.
        var annotations = new QdqAnnotations();
        // Requantized outputs, and activations every reader of which is a quantized node, are quantized where they are
        // produced, for all readers (in calibration order, activation inputs first: where a chain such as
        // Conv → MaxPool → Conv meets two grids, the grid the next Conv reads wins, so ORT keeps the MaxPool in int8).
        // Any other activation is quantized only for the quantized nodes that read it, so a transformer's residual
        // stream and shape computations keep reading the float tensor.
        bool OnlyQuantizedReaders(string tensor) => _consumers.TryGetValue(tensor, out var readers) &&
            readers.All(r => quantizedNames.Contains(r.Name) && ActivationInputs(r).Contains(tensor));
        // (A smoothed activation's grid is X/s's: its readers read it through the smoothing Mul, never at X.)
        foreach (var (tensor, grid) in grids.Where(g => _outputTensors.Contains(g.Key) || OnlyQuantizedReaders(g.Key) && !smoothing.ContainsKey(g.Key)))
            annotations.Tensors[tensor] = grid;
        foreach (var node in quantizedTargets)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (!grids.TryGetValue(node.Input[i], out var grid) || (IsWeighted(node) && i > 0)) continue;
                annotations.Inputs[(node.Name, i)] = grid;
                annotations.Report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Input, 8, grid.Spec.Scheme, grid.Spec.Dtype,
                    grid.ScaleValues(), grid.ZeroPointValues()));
            }
            if (IsWeighted(node)) annotations.Weights[node.Name] = QuantizeWeight(node, annotations.Report, smoothing);
            if (OutputTensor(node) is { } outputTensor && grids.TryGetValue(outputTensor, out var calibrated))
                annotations.Report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Output, 8, calibrated.Spec.Scheme, calibrated.Spec.Dtype,
                    calibrated.ScaleValues(), calibrated.ZeroPointValues()));
        }
        var fed = QdqGraphRewriter.Rewrite(model, onnx, annotations, names);
        NameOutputs(model, onnx, outputs);
        return (model, new QuantizationReport(QuantizationReport.CurrentFormatVersion, algorithm, annotations.Report), fed);
    }

    // Each smoothed activation X gets a Mul by 1/s right after it is produced; its quantized readers read that (exact in
    // float: their weights' rows were multiplied by s), its float readers (a residual Add, Shape) still read X.
    // Node inputs still carry the original names here (the Q/DQ rewrite maps renamed graph inputs afterwards).
    private static void Smooth(ModelProto model, OnnxGraphBuilder onnx, Dictionary<string, float[]> smoothing, HashSet<string> quantized)
    {
        var graph = model.Graph;
        foreach (var (tensor, factors) in smoothing)
        {
            var readers = graph.Node.Where(n => quantized.Contains(n.Name) && n.Input.Count > 0 && n.Input[0] == tensor).ToList();
            if (readers.Count == 0) continue;
            var mul = new NodeProto { OpType = "Mul", Name = onnx.Unique($"{tensor}.smooth") };
            mul.Input.Add(tensor);
            mul.Input.Add(onnx.Initializer($"{tensor}.smooth_inverse", factors.Select(f => 1f / f).ToArray(), factors.Length));
            mul.Output.Add(onnx.Unique($"{tensor}.smoothed"));
            var producer = graph.Node.Select((n, i) => (n, i)).FirstOrDefault(p => p.n.Output.Contains(tensor));
            graph.Node.Insert(producer.n is null ? 0 : producer.i + 1, mul);
            foreach (var reader in readers) reader.Input[0] = mul.Output[0];
        }
    }

    // The chosen outputs become graph outputs named after their columns (an Identity where the name differs).
    private static void NameOutputs(ModelProto model, OnnxGraphBuilder onnx, List<(string GraphOutput, string Column)> outputs)
    {
        foreach (var (graphOutput, column) in outputs.Where(o => o.GraphOutput != o.Column))
        {
            if (onnx.Unique(column) != column)
                throw new NotSupportedException($"Output '{graphOutput}' is to become column '{column}', but the model already has a tensor of " +
                    "that name; choose another column name (OutputColumns or ScoreColumnName).");
            var identity = new NodeProto { OpType = "Identity", Name = onnx.Unique($"{column}.output") };
            identity.Input.Add(graphOutput);
            identity.Output.Add(column);
            onnx.Append(identity);
            var declared = model.Graph.Output.Single(o => o.Name == graphOutput);
            var renamed = declared.Clone();
            renamed.Name = column;
            model.Graph.Output.Insert(model.Graph.Output.IndexOf(declared), renamed);
            model.Graph.Output.Remove(declared);
        }
    }

    // The values per leading index of an original tensor and of its channel-padded form (same shape but for axis 1).
    private static (int Block, int PaddedBlock) ChannelBlocks(OrtValue original, OrtValue padded)
    {
        var a = original.GetTensorTypeAndShape().Shape;
        var b = padded.GetTensorTypeAndShape().Shape;
        if (a.Length != b.Length || a.Length < 2 || a[0] != b[0] || b[1] < a[1] || !a.Skip(2).SequenceEqual(b.Skip(2)))
            throw new InvalidOperationException($"The quantized model feeds a tensor of shape [{string.Join(", ", b)}] where the float model has " +
                $"[{string.Join(", ", a)}]: the Q/DQ rewrite changed more than the channel count.");
        var rest = a.Skip(2).Aggregate(1L, (p, d) => p * d);
        return ((int)(a[1] * rest), (int)(b[1] * rest));
    }

    // The integer weight of a Conv/ConvTranspose/Gemm/MatMul node, per output channel (or per tensor), symmetric, at
    // its bit width (int8 storage for 5–8 bits, which ONNX Runtime's integer kernels take; packed int4 for 2–4 bits):
    // AdaRound's codes where it ran, else rounded to nearest.
    private QuantizedWeight QuantizeWeight(NodeProto node, List<QuantizedTensorReport> report, Dictionary<string, float[]> smoothing)
    {
        var plan = PlanWeight(node, smoothing);
        var ints = _learnedCodes.TryGetValue(node.Name, out var learned) ? learned : plan.RoundToNearest();
        report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Weight, plan.Spec.Bits, plan.Spec.Scheme, plan.Spec.Dtype, plan.Scales,
            new long[plan.Scales.Length]));
        // 4 bits and fewer are stored packed: the size is why one quantizes that far.
        return new QuantizedWeight(ints, plan.Scales, new long[plan.Scales.Length], Signed: true, plan.Shape, plan.Axis) { PackedInt4 = plan.Spec.Bits <= 4 };
    }

    // The float weight the integers approximate (SmoothQuant's factors applied) and its symmetric grid.
    private WeightPlan PlanWeight(NodeProto node, Dictionary<string, float[]> smoothing)
    {
        var initializer = _initializers[node.Input[1]];
        var values = OnnxTensors.Floats(initializer);
        var shape = initializer.Dims.ToArray();
        if (smoothing.TryGetValue(node.Input[0], out var factors))
        {
            // W's input rows (K) take the factors the activation was divided by.
            var weight = new MatMulWeight(node, initializer, values);
            for (var i = 0; i < values.Length; i++) values[i] *= factors[weight.InputChannelOf(i)];
        }
        var axis = OnnxOps.WeightChannelAxis(node, shape.Length);
        var bits = WeightBitsOf(node);
        var spec = _options.PerChannelWeights
            ? new QuantSpec(QuantDtype.Int, bits, QuantScheme.PerChannelSymmetric, QuantRangeKind.Full, channelAxis: 0)
            : new QuantSpec(QuantDtype.Int, bits, QuantScheme.PerTensorSymmetric);
        float[] scales;
        using (NewDisposeScope()) // keeps the chained temporaries reachable during the native calls (see Calibrate)
        {
            var weight = tensor(values, shape);
            var channelFirst = axis == 0 ? weight : weight.movedim(new long[] { axis }, new long[] { 0 }).contiguous();
            var (min, max) = ChannelRange.Of(channelFirst, spec);
            scales = QParamsCalculator.FromMinMax(min, max, spec).ScaleValues();
        }
        var channels = shape[axis];
        if (scales.Length == 1 && channels > 1) scales = Enumerable.Repeat(scales[0], (int)channels).ToArray();
        return new WeightPlan(values, shape, axis, spec, scales);
    }

    // What the report calls the algorithm: the calibration and every option that changed the weights or the graph.
    private string AlgorithmName(bool weightOnly)
    {
        if (weightOnly) return "Naive";
        var parts = new List<string> { "Observer" };
        if (Static.SmoothQuantAlpha is not null) parts.Add("SmoothQuant");
        if (Static.CrossLayerEqualization) parts.Add(_equalization?.Relu6Replaced > 0 ? "CLE (ReLU6 → ReLU)" : "CLE");
        if (Static.AdaRound is not null) parts.Add("AdaRound");
        if (Static.BiasCorrection) parts.Add("bias correction");
        if (Static.WeightSizeBudget is not null) parts.Add("mixed precision");
        if (Static.AccuracyTolerance is not null) parts.Add("tolerance search");
        return string.Join(" + ", parts);
    }

    private int WeightBitsOf(NodeProto node) => _weightBits.TryGetValue(node.Name, out var bits) ? bits : _static?.WeightBits ?? 8;
}

/// <summary>The quantizer's result: the QDQ model, its report, and the columns it reads and writes.</summary>
/// <param name="Onnx">The QDQ model's bytes.</param>
/// <param name="Report">What was quantized.</param>
/// <param name="InputColumns">The columns feeding the model's inputs (its input names), in graph order.</param>
/// <param name="OutputColumns">The output columns (its output names).</param>
/// <param name="InputShapes">For inputs with symbolic dimensions besides the batch: the shape ML.NET feeds, [1, row dims…].</param>
internal sealed record QuantizedModel(byte[] Onnx, QuantizationReport Report, string[] InputColumns, string[] OutputColumns,
    Dictionary<string, int[]> InputShapes);
