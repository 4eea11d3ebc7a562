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
    /// constant weight) and by node name (characters other than letters, digits and '_' become '_'). It must have one
    /// float input, fed from <see cref="FeatureColumnName"/>, and one output. When <see cref="InputShape"/> is empty it
    /// is taken from the model's input. The saved model is the same graph with Q/DQ inserted and its outputs as they
    /// are: Score holds the model's own output (logits, not probabilities). Set exactly one of <see cref="Model"/>,
    /// <see cref="ModelFactory"/> and this.</summary>
    public string? OnnxModelPath { get; set; }

    /// <summary>Shape of one example without the batch dimension (e.g. [1, 28, 28]); the features vector is reshaped
    /// to it, so its size must equal the product.</summary>
    public long[] InputShape { get; set; } = Array.Empty<long>();

    /// <summary>The known-size float vector column holding the features.</summary>
    public string FeatureColumnName { get; set; } = "Features";

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
        var graph = new Graph.OnnxGraphModule(model, source);
        var input = Graph.InputBinding.GraphInputs(model).ToList();
        if (input.Count != 1 || model.Graph.Output.Count != 1 || input[0].Type.TensorType.ElemType != Graph.OnnxTensors.Float)
            throw new NotSupportedException($"{source}: training reads one float features column, so the model must have one float input " +
                $"and one output; it has {input.Count} input(s) ({string.Join(", ", input.Select(i => i.Name))}) and {model.Graph.Output.Count} output(s). " +
                "Models with several or integer inputs are quantized post-training with OnnxQuantizationOptions.");
        // Symbolic dimensions after the batch (a dynamic image size) need InputShape.
        var dims = input[0].Type.TensorType.Shape?.Dim.Skip(1).Select(d => d.DimValue).ToArray() ?? Array.Empty<long>();
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
        if (InputShape is null || InputShape.Length == 0 || InputShape.Any(d => d <= 0))
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
