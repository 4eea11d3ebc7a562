using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>What every algorithm needs: the model, the data columns, the config list and where to run. Options are
/// validated before anything runs, so a mistake fails in milliseconds with the option's name.</summary>
public abstract class QuantizationOptions
{
    /// <summary>A model with weights to fine-tune or calibrate. The estimators' Fit leaves it as it was (it trains the
    /// instance and restores every parameter and buffer afterwards, also when Fit throws); the lower-level
    /// <see cref="QuantizationRunner.Run(Microsoft.ML.MLContext, QuantizationOptions, Microsoft.ML.IDataView?)"/> trains it in
    /// place, as the returned network's latent model. Set this or <see cref="ModelFactory"/>, not both.</summary>
    public nn.Module<Tensor, Tensor>? Model { get; set; }

    /// <summary>Builds a fresh model to train from scratch (called once, after seeding TorchSharp from the MLContext).</summary>
    public Func<nn.Module<Tensor, Tensor>>? ModelFactory { get; set; }

    /// <summary>A float ONNX model to fine-tune or calibrate (any opset 7–21, any graph of the ops listed in
    /// docs/onnx-ptq.md): imported as the ONNX post-training quantizer imports it (BatchNormalization folded) and run op
    /// by op on TorchSharp, its float weights and biases trained as parameters. Config lists select its nodes by ONNX op
    /// type (Conv, ConvTranspose, Gemm, MatMul, Relu …; <c>default</c> = the Conv/ConvTranspose/Gemm/MatMul nodes with a
    /// constant weight) and by node name (characters other than letters, digits and '_' become '_'). Its one output is
    /// what the label trains. A model with one float input reads it from <see cref="FeatureColumnName"/> (a flat float
    /// vector; when <see cref="InputShape"/> is empty it is taken from the model's input); a model with several inputs or
    /// a non-float one (a transformer's int64 token ids and mask) reads each from the column of the input's name (or its
    /// <see cref="InputColumns"/> entry), of the element type the model wants, shaped by the model, the column's vector
    /// dimensions or <see cref="InputShapes"/>, and the saved model keeps those inputs. Set exactly one of
    /// <see cref="Model"/>, <see cref="ModelFactory"/> and this.</summary>
    public string? OnnxModelPath { get; set; }

    /// <summary>Shape of one example without the batch dimension (e.g. [1, 28, 28]); the features vector is reshaped
    /// to it, so its size must equal the product.</summary>
    public long[] InputShape { get; set; } = Array.Empty<long>();

    /// <summary>The known-size float vector column holding the features.</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>For an ONNX model (<see cref="OnnxModelPath"/>) with several inputs or a non-float one: the column that
    /// feeds each graph input, by input name. An input not listed reads the column of its own name.</summary>
    public IDictionary<string, string> InputColumns { get; set; } = new Dictionary<string, string>();

    /// <summary>For an ONNX model with several inputs or a non-float one: the per-row shape (without the batch) of an
    /// input whose symbolic dimensions neither the model nor the column's vector dimensions fix, by input name.</summary>
    public IDictionary<string, long[]> InputShapes { get; set; } = new Dictionary<string, long[]>();

    /// <summary>The label column: key, uint or int (classification, cross-entropy) or float (regression, MSE).</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>NNI's config_list, typed. Empty: the algorithm's default (weights and inputs of every conv and linear
    /// layer at 8 bits for QAT, LSQ and Observer; weights for Naive and DoReFa; 1-bit weights and Hardtanh outputs for
    /// BNN).</summary>
    public IList<QuantConfig> Config { get; set; } = new List<QuantConfig>();

    /// <summary>Scheme and dtype where a sub-config names none (NNI's global set_quant_scheme_dtype, made explicit).</summary>
    public QuantDefaults Defaults { get; set; } = QuantDefaults.OnnxRuntimeFriendly;

    /// <summary>Where to run.</summary>
    public QuantDevice Device { get; set; } = QuantDevice.Auto;

    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Receives progress reports (every <see cref="LogEverySteps"/> steps and at each epoch's end).</summary>
    public IProgress<QuantizationProgress>? Progress { get; set; }

    /// <summary>Stops the run between batches with an <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Steps between progress lines in the MLContext log (and reports).</summary>
    public int LogEverySteps { get; set; } = 100;

    internal abstract QuantAlgorithm CreateAlgorithm();

    /// <summary>The ONNX model after import (BatchNormalization folded, opset lifted), once <see cref="OnnxModelPath"/>
    /// was read; null for TorchSharp models.</summary>
    internal global::Onnx.ModelProto? ImportedModel { get; private set; }

    /// <summary>Whether the model reads its graph inputs from their own columns (an ONNX model with several inputs or a
    /// non-float one) rather than one flat features column.</summary>
    internal bool ReadsGraphInputs => ImportedModel is { } model && Graph.InputBinding.GraphInputs(model) is var inputs &&
        (inputs.Count != 1 || inputs[0].Type?.TensorType?.ElemType != Graph.OnnxTensors.Float);

    /// <summary>The model to run: <see cref="Model"/>, a new one from <see cref="ModelFactory"/>, or one converted from
    /// <see cref="OnnxModelPath"/>.</summary>
    internal nn.Module<Tensor, Tensor> CreateModel() => Model ?? (OnnxModelPath is not null ? ImportOnnx().Model : ModelFactory!()) ??
        throw new ArgumentException("ModelFactory returned null.", nameof(ModelFactory));

    private (nn.Module<Tensor, Tensor> Model, long[] InputShape) ImportOnnx()
    {
        if (!File.Exists(OnnxModelPath)) throw new FileNotFoundException($"No ONNX model at '{OnnxModelPath}' (OnnxModelPath).", OnnxModelPath);
        var model = OnnxPtq.OnnxModelReader.Read(File.ReadAllBytes(OnnxModelPath), nameof(OnnxModelPath), OnnxModelPath);
        var source = $"'{OnnxModelPath}'";
        Graph.OnnxImporter.Import(model, source);
        var inputs = Graph.InputBinding.GraphInputs(model).ToList();
        if (model.Graph.Output.Count != 1)
            throw new NotSupportedException($"{source}: training fits the model's output to the label, so the model must have one output; it has " +
                $"{model.Graph.Output.Count} ({string.Join(", ", model.Graph.Output.Select(o => o.Name))}). Models with several outputs are quantized " +
                "post-training with OnnxQuantizationOptions.");
        foreach (var input in inputs)
            if (Graph.InputBinding.ItemTypeOf(input.Type?.TensorType?.ElemType ?? 0) is null)
                throw new NotSupportedException($"{source}: input '{input.Name}' has ONNX element type {input.Type?.TensorType?.ElemType}; float, double, " +
                    "int64, int32 and bool inputs are supported.");
        ImportedModel = model;
        var graph = new Graph.OnnxGraphModule(model, source);
        if (ReadsGraphInputs) return (graph, Array.Empty<long>());
        // Symbolic dimensions after the batch (a dynamic image size) need InputShape.
        var dims = inputs[0].Type.TensorType.Shape?.Dim.Skip(1).Select(d => d.DimValue).ToArray() ?? Array.Empty<long>();
        return (graph, dims.All(d => d > 0) ? dims : Array.Empty<long>());
    }

    /// <summary>Whether <see cref="Config"/> applies (float training ignores it).</summary>
    internal virtual bool UsesConfig => true;

    /// <summary>Whether the algorithm reads data (Naive does not).</summary>
    internal virtual bool NeedsData => true;

    /// <summary>Checks every option; throws naming the first one at fault.</summary>
    internal virtual void Validate()
    {
        if (new object?[] { Model, ModelFactory, OnnxModelPath }.Count(o => o is not null) != 1)
            throw new ArgumentException("Set exactly one of Model (an instance to fine-tune or calibrate), ModelFactory (a model to train " +
                "from scratch) and OnnxModelPath (a float ONNX model to fine-tune or calibrate).",
                Model is not null ? nameof(Model) : ModelFactory is not null ? nameof(ModelFactory) : nameof(OnnxModelPath));
        if (OnnxModelPath is not null)
        {
            var (model, shape) = ImportOnnx(); // imports now, so an unsupported opset, op or input fails before Fit
            model.Dispose();
            if (InputShape is null || InputShape.Length == 0) InputShape = shape;
        }
        if (InputColumns is null || InputColumns.Any(p => string.IsNullOrWhiteSpace(p.Value)))
            throw new ArgumentException("InputColumns must map input names to column names.", nameof(InputColumns));
        if (InputShapes is null || InputShapes.Any(p => p.Value is null || p.Value.Any(d => d <= 0)))
            throw new ArgumentException("InputShapes must give each input a per-row shape of positive dimensions.", nameof(InputShapes));
        if (!ReadsGraphInputs && (InputShape is null || InputShape.Length == 0 || InputShape.Any(d => d <= 0)))
            throw new ArgumentException($"InputShape must list the positive dimensions of one example (e.g. [1, 28, 28]); " +
                $"got [{string.Join(", ", InputShape ?? Array.Empty<long>())}].", nameof(InputShape));
        if (string.IsNullOrWhiteSpace(FeatureColumnName))
            throw new ArgumentException("FeatureColumnName must name a column.", nameof(FeatureColumnName));
        if (string.IsNullOrWhiteSpace(LabelColumnName))
            throw new ArgumentException("LabelColumnName must name a column.", nameof(LabelColumnName));
        if (Config is null) throw new ArgumentNullException(nameof(Config));
        if (Defaults is null) throw new ArgumentNullException(nameof(Defaults));
        if (Device is null) throw new ArgumentNullException(nameof(Device));
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (LogEverySteps < 1)
            throw new ArgumentOutOfRangeException(nameof(LogEverySteps), LogEverySteps, "LogEverySteps must be >= 1.");
    }
}
