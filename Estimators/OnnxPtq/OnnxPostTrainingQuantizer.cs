using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using MLNetQuant.Onnx;
using MLNetQuant.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.OnnxPtq;

/// <summary>Quantizes a float ONNX model after training: finds the Conv/Gemm/MatMul nodes with constant weights,
/// calibrates their activation inputs in ONNX Runtime over an IDataView with streaming observers (memory independent
/// of the row count), and rewrites the graph through the same QDQ writer as trained networks (int8 per-channel
/// weights, Q/DQ activations repeated over the Relu/MaxPool/Flatten/Reshape chain before each quantized node so ORT
/// fuses, int32 bias), with the features column reshaped to the model's input and its first output renamed.</summary>
internal sealed class OnnxPostTrainingQuantizer
{
    private static readonly HashSet<string> GridPreserving = new() { "Relu", "MaxPool", "Flatten", "Reshape", "Identity" };

    private readonly OnnxQuantizationOptions _options;
    private readonly ModelProto _model;
    private readonly Dictionary<string, TensorProto> _initializers;
    private readonly List<NodeProto> _targets;
    private readonly ValueInfoProto _input;
    private readonly long[] _inputShape;

    public OnnxPostTrainingQuantizer(OnnxQuantizationOptions options)
    {
        _options = options;
        _model = options.ReadModel();
        FoldedBatchNorms = OnnxGraphPreparation.Prepare(_model);
        var opset = _model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        if (opset < 13)
            throw new NotSupportedException($"The model uses opset {opset}; per-channel QDQ needs opset 13 or later (opset upgrade is not implemented yet).");
        _initializers = _model.Graph.Initializer.ToDictionary(t => t.Name);
        var inputs = _model.Graph.Input.Where(i => !_initializers.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1) throw new NotSupportedException($"The model has {inputs.Count} inputs; one is supported.");
        _input = inputs[0];
        _inputShape = _input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue > 0 ? d.DimValue
            : throw new NotSupportedException($"Input '{_input.Name}' has a symbolic dimension besides the batch.")).ToArray();
        _targets = _model.Graph.Node.Where(n => options.OpTypes.Contains(n.OpType) && !options.ExcludedNodes.Contains(n.Name) &&
            (IsWeighted(n) ? n.Input.Count > 1 && _initializers.ContainsKey(n.Input[1]) : ActivationInputs(n).Any())).ToList();
    }

    /// <summary>BatchNormalization nodes folded into their convs before quantization.</summary>
    public int FoldedBatchNorms { get; }

    private static bool IsWeighted(NodeProto node) => node.OpType is "Conv" or "Gemm" or "MatMul";

    // The float tensors a target reads that get a Q/DQ pair: the data input of a weighted op, every non-constant input
    // of an elementwise op (Add).
    private IEnumerable<string> ActivationInputs(NodeProto node) => IsWeighted(node)
        ? new[] { node.Input[0] }
        : node.Input.Where(i => i.Length > 0 && !_initializers.ContainsKey(i));

    /// <summary>Elements of one example.</summary>
    public long FeatureSize => _inputShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Calibrates (unless <paramref name="weightOnly"/>) and writes the QDQ model.</summary>
    public (byte[] Onnx, QuantizationReport Report) Quantize(MLContext ml, IDataView? data, bool weightOnly)
    {
        var host = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register("MLNetQuant");
        using var log = host.Start("MLNetQuant");
        log.Info(Microsoft.ML.Runtime.MessageSensitivity.None,
            $"ONNX {(weightOnly ? "Naive" : "Observer")}: {_targets.Count} node(s) to quantize, {FoldedBatchNorms} BatchNormalization node(s) folded.");
        var grids = weightOnly ? new Dictionary<string, QParams>() : Calibrate(data ?? throw new ArgumentNullException(nameof(data)), log);
        var (onnx, report, fed) = Rewrite(grids, weightOnly ? "Naive" : "Observer");
        if (weightOnly || data is null || _options.ErrorReportRows == 0) return (onnx, report);
        var errors = LayerErrors(onnx, fed, data);
        foreach (var worst in errors.Take(3))
            log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"quantization error: {worst.Node} ({worst.OpType}) SQNR {worst.SqnrDb:F1} dB");
        report = report with { LayerErrors = errors };
        var model = ModelProto.Parser.ParseFrom(onnx);
        model.MetadataProps.Single(p => p.Key == QuantizationReport.MetadataKey).Value = report.ToJson();
        return (Google.Protobuf.MessageExtensions.ToByteArray(model), report);
    }

    // SQNR of the quantized activations each node consumes (float model's tensor against the dequantized one the QDQ
    // model feeds it, which carries the error of every layer before), on the first ErrorReportRows rows.
    private List<LayerError> LayerErrors(byte[] quantized, Dictionary<string, List<(string Original, string Fed)>> fed, IDataView data)
    {
        var pairs = fed.SelectMany(f => f.Value.Select(v => (Node: f.Key, v.Original, v.Fed))).ToList();
        var outputs = pairs.Select(p => p.Original).Distinct().ToList();
        var fedNames = pairs.Select(p => p.Fed).Distinct().ToList();
        var floatProbe = _model.Clone();
        ExposeOutputs(floatProbe, outputs);
        var quantizedProbe = ModelProto.Parser.ParseFrom(quantized);
        ExposeOutputs(quantizedProbe, fedNames);

        var column = data.Schema[_options.FeatureColumnName];
        var rows = new List<float>();
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> row = default;
            for (var i = 0; i < _options.ErrorReportRows && cursor.MoveNext(); i++)
            {
                getter(ref row);
                rows.AddRange(row.DenseValues());
            }
        }
        var count = rows.Count / (int)FeatureSize;
        if (count == 0) return new List<LayerError>();
        using var floatSession = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(floatProbe));
        using var quantizedSession = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(quantizedProbe));
        var batch = rows.ToArray();
        using var floatInput = OrtValue.CreateTensorValueFromMemory(batch, new[] { (long)count }.Concat(_inputShape).ToArray());
        using var quantizedInput = OrtValue.CreateTensorValueFromMemory(batch, new[] { (long)count, FeatureSize });
        using var runOptions = new RunOptions();
        using var floatOutputs = floatSession.Run(runOptions, new[] { _input.Name }, new[] { floatInput }, outputs);
        using var quantizedOutputs = quantizedSession.Run(runOptions, new[] { _options.FeatureColumnName }, new[] { quantizedInput }, fedNames);
        var errors = new List<LayerError>();
        foreach (var node in _targets.Where(n => fed.ContainsKey(n.Name)))
        {
            double signal = 0, noise = 0;
            foreach (var (_, original, fedName) in pairs.Where(p => p.Node == node.Name))
            {
                var x = floatOutputs[outputs.IndexOf(original)].GetTensorDataAsSpan<float>();
                var y = quantizedOutputs[fedNames.IndexOf(fedName)].GetTensorDataAsSpan<float>();
                for (var k = 0; k < x.Length; k++)
                {
                    signal += (double)x[k] * x[k];
                    noise += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
                }
            }
            errors.Add(new LayerError(node.Name, node.OpType, Math.Round(10 * Math.Log10((signal + 1e-30) / (noise + 1e-30)), 2)));
        }
        return errors.OrderBy(e => e.SqnrDb).ToList();
    }

    private Dictionary<string, QParams> Calibrate(IDataView data, Microsoft.ML.Runtime.IChannel log)
    {
        var column = data.Schema.GetColumnOrNull(_options.FeatureColumnName) ?? throw new ArgumentException(
            $"The calibration data has no column '{_options.FeatureColumnName}'.");
        if (column.Type is not VectorDataViewType { ItemType: var item, Size: var size } || item != NumberDataViewType.Single || size != FeatureSize)
            throw new ArgumentException($"Column '{_options.FeatureColumnName}' must be a vector of {FeatureSize} Single values " +
                $"(the model input '{_input.Name}' is [{string.Join(", ", _inputShape)}]); it is {column.Type}.");

        // The calibration model also returns each quantized node's activation input.
        var probe = _model.Clone();
        var tensors = _targets.SelectMany(ActivationInputs).Distinct().ToList();
        ExposeOutputs(probe, tensors);
        var spec = _options.SymmetricActivations
            ? new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric)
            : QuantSpec.UInt8PerTensorAffineActivations;
        var observers = tensors.ToDictionary(t => t, _ => ActivationObservers.Create(_options.Calibration, spec, _options.Percentile));
        try
        {
            using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(probe));
            using var runOptions = new RunOptions();
            using var cursor = data.GetRowCursor(new[] { column });
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var batch = new float[_options.BatchSize * FeatureSize];
            VBuffer<float> row = default;
            long rows = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                var count = 0;
                while (count < _options.BatchSize && (_options.CalibrationRows == 0 || rows < _options.CalibrationRows) && cursor.MoveNext())
                {
                    getter(ref row);
                    row.CopyTo(batch.AsSpan(count * (int)FeatureSize, (int)FeatureSize));
                    count++;
                    rows++;
                }
                if (count == 0) break;
                var shape = new[] { (long)count }.Concat(_inputShape).ToArray();
                using var input = OrtValue.CreateTensorValueFromMemory(batch.AsSpan(0, count * (int)FeatureSize).ToArray(), shape);
                using var outputs = session.Run(runOptions, new[] { _input.Name }, new[] { input }, tensors);
                for (var i = 0; i < tensors.Count; i++)
                {
                    var info = outputs[i].GetTensorTypeAndShape();
                    using var values = tensor(outputs[i].GetTensorDataAsSpan<float>().ToArray(), info.Shape);
                    observers[tensors[i]].Observe(values);
                }
                var progress = new QuantizationProgress("calibrate", 1, 1, (rows + _options.BatchSize - 1) / _options.BatchSize, rows,
                    double.NaN, double.NaN, rows / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), clock.Elapsed, count < _options.BatchSize);
                _options.Progress?.Report(progress);
                log.Info(Microsoft.ML.Runtime.MessageSensitivity.None, $"{progress} ({tensors.Count} tensors observed)");
                if (count < _options.BatchSize) break;
            }
            if (rows == 0) throw new InvalidOperationException("The calibration data has no rows.");
            return observers.ToDictionary(o => o.Key, o => ChannelRange.CpuCopy(o.Value.ComputeQParams()));
        }
        finally
        {
            foreach (var observer in observers.Values) observer.Dispose();
        }
    }

    // Makes intermediate float tensors graph outputs, so ONNX Runtime returns them.
    private static void ExposeOutputs(ModelProto model, IEnumerable<string> tensors)
    {
        foreach (var name in tensors.Where(t => model.Graph.Output.All(o => o.Name != t)))
            model.Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
    }

    private (byte[], QuantizationReport, Dictionary<string, List<(string Original, string Fed)>>) Rewrite(Dictionary<string, QParams> grids, string algorithm)
    {
        var onnx = new OnnxGraphBuilder();
        var qdq = new QdqEmitter(onnx);
        var report = new List<QuantizedTensorReport>();
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var gridOf = new Dictionary<string, QParams>(StringComparer.Ordinal);
        var fed = new Dictionary<string, List<(string Original, string Fed)>>(StringComparer.Ordinal);
        void Fed(NodeProto node, int input, string name)
        {
            if (!fed.TryGetValue(node.Name, out var list)) fed[node.Name] = list = new List<(string, string)>();
            list.Add((node.Input[input], name));
        }
        string Map(string name) => name.Length == 0 ? name : names.TryGetValue(name, out var mapped) ? mapped : name;

        var features = onnx.Input(_options.FeatureColumnName, FeatureSize);
        var shape = onnx.Initializer("input_shape", new[] { -1L }.Concat(_inputShape).ToArray(), _inputShape.Length + 1);
        names[_input.Name] = onnx.Node("Reshape", "input", new[] { features, shape });

        var targets = _targets.ToHashSet();
        var replaced = new HashSet<string>(_targets.Where(IsWeighted).SelectMany(n => n.Input.Skip(1)), StringComparer.Ordinal);
        foreach (var initializer in _model.Graph.Initializer.Where(t => !replaced.Contains(t.Name)))
            names[initializer.Name] = onnx.Initializer(initializer);
        var requantize = PlanPropagation(grids);

        foreach (var node in _model.Graph.Node)
        {
            if (node.Output.Count > 1 && node.Output.Skip(1).Any(o => o.Length > 0 && _model.Graph.Node.Any(n => n.Input.Contains(o))))
                throw new NotSupportedException($"Node '{node.Name}' ({node.OpType}) has several used outputs.");
            var inputs = node.Input.Select(Map).ToList();
            if (targets.Contains(node))
            {
                // Every observed activation input gets its grid (one for Conv/Gemm/MatMul, all data inputs otherwise),
                // unless it already arrives dequantized on that grid through the propagation below.
                for (var i = 0; i < node.Input.Count; i++)
                {
                    if (!grids.TryGetValue(node.Input[i], out var grid)) continue;
                    if (!gridOf.TryGetValue(inputs[i], out var current) || !ReferenceEquals(current, grid))
                        inputs[i] = qdq.QuantizeDequantize(inputs[i], grid.ScaleValues()[0], grid.ZeroPointValues()[0], grid.Spec.Range,
                            grid.Spec.Dtype == QuantDtype.Int, IsWeighted(node) ? $"{node.Name}.input" : $"{node.Name}.input{i}");
                    Fed(node, i, inputs[i]);
                    report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Input, 8, grid.Spec.Scheme, grid.Spec.Dtype,
                        grid.ScaleValues(), grid.ZeroPointValues()));
                }
            }
            if (targets.Contains(node) && IsWeighted(node))
            {
                var inputGrid = grids.GetValueOrDefault(node.Input[0]);
                var (weightName, weightScales) = QuantizeWeight(node, qdq, report);
                inputs[1] = weightName;
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    var bias = OnnxGraphBuilder.Floats(_initializers[node.Input[2]]);
                    inputs[2] = inputGrid is null
                        ? onnx.Initializer($"{node.Name}.bias", bias, bias.Length)
                        : qdq.Int32Bias(node.Name, bias, inputGrid.ScaleValues()[0], weightScales);
                }
            }
            var output = onnx.Node(node.OpType, string.IsNullOrEmpty(node.Name) ? node.OpType : node.Name, inputs, node.Attribute);
            names[node.Output[0]] = output;
            if (requantize.TryGetValue(node.Output[0], out var outputGrid))
            {
                var dq = qdq.QuantizeDequantize(output, outputGrid.ScaleValues()[0], outputGrid.ZeroPointValues()[0], outputGrid.Spec.Range,
                    outputGrid.Spec.Dtype == QuantDtype.Int, $"{node.Name}.requant");
                names[node.Output[0]] = dq;
                gridOf[dq] = outputGrid;
            }
        }

        var first = _model.Graph.Output[0];
        var dims = first.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
        onnx.Output(_options.ScoreColumnName, Map(first.Name), OnnxGraphBuilder.ElementType.Float, dims);
        var result = new QuantizationReport(QuantizationReport.CurrentFormatVersion, algorithm, report);
        return (onnx.Build(13, new Dictionary<string, string> { [QuantizationReport.MetadataKey] = result.ToJson() }), result, fed);
    }

    // The tensors on the grid-preserving chain (Relu, MaxPool, Flatten, Reshape, Identity) that leads to a quantized
    // node's input get that input's grid too, so the compute node before the chain meets a QuantizeLinear.
    private Dictionary<string, QParams> PlanPropagation(Dictionary<string, QParams> grids)
    {
        var producer = _model.Graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        var plan = new Dictionary<string, QParams>(StringComparer.Ordinal);
        foreach (var (tensorName, grid) in grids)
        {
            var current = tensorName;
            while (producer.TryGetValue(current, out var node))
            {
                plan.TryAdd(current, grid);
                if (!GridPreserving.Contains(node.OpType)) break;
                current = node.Input[0];
            }
        }
        return plan;
    }

    private (string Name, float[] Scales) QuantizeWeight(NodeProto node, QdqEmitter qdq, List<QuantizedTensorReport> report)
    {
        var initializer = _initializers[node.Input[1]];
        var values = OnnxGraphBuilder.Floats(initializer);
        var shape = initializer.Dims.ToArray();
        var transB = node.Attribute.FirstOrDefault(a => a.Name == "transB")?.I ?? 0;
        // The output-channel axis: Conv's weight is [out, in, k…]; Gemm's B is [in, out] unless transB; MatMul's B is [in, out].
        var axis = node.OpType == "Conv" || (node.OpType == "Gemm" && transB == 1) ? 0 : shape.Length - 1;
        var spec = _options.PerChannelWeights ? QuantSpec.Int8PerChannelSymmetricWeights : new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric);
        using var weight = tensor(values, shape);
        var channelFirst = axis == 0 ? weight.alias() : weight.movedim(new long[] { axis }, new long[] { 0 }).contiguous();
        var (min, max) = ChannelRange.Of(channelFirst, spec);
        using var _ = channelFirst;
        using var __ = min;
        using var ___ = max;
        using var qParams = QParamsCalculator.FromMinMax(min, max, spec);
        var scales = qParams.ScaleValues();
        var channels = shape[axis];
        if (scales.Length == 1 && channels > 1) scales = Enumerable.Repeat(scales[0], (int)channels).ToArray();
        var strides = Enumerable.Range(0, shape.Length).Select(d => shape.Skip(d + 1).Aggregate(1L, (a, b) => a * b)).ToArray();
        var ints = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var c = (int)(i / strides[axis] % channels);
            ints[i] = (int)Math.Clamp(Math.Round(values[i] / scales[c], MidpointRounding.ToEven), -128, 127);
        }
        report.Add(new QuantizedTensorReport(node.Name, node.OpType, QuantType.Weight, 8, spec.Scheme, spec.Dtype, scales, new long[scales.Length]));
        return (qdq.DequantizedWeight(node.Name, ints, scales, new long[scales.Length], signed: true, shape, axis), scales);
    }
}
