using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant;

/// <summary>The quantization entry points of an <see cref="MLContext"/>, reached with
/// <c>mlContext.Quantization()</c>: NNI's six algorithms as ML.NET estimators, each with an Options overload (every
/// setting) and a simple-parameters one (the common ones). Their models run a QDQ ONNX model in ONNX Runtime and save
/// in the ML.NET .zip.</summary>
public sealed class QuantizationCatalog
{
    internal QuantizationCatalog(MLContext context)
    {
        Context = context;
    }

    /// <summary>The ML.NET context the estimators created from this catalog belong to.</summary>
    public MLContext Context { get; }

    /// <summary>Quantization-aware training (NNI's QAT_Quantizer).</summary>
    /// <exception cref="ArgumentException">An invalid option, named.</exception>
    public QuantizationEstimator Qat(QatOptions options) => new(Context, options);

    /// <summary>Quantization-aware training of a copy of <paramref name="model"/> (the instance keeps its weights) with the given config
    /// (default: weights and inputs of every conv and linear layer at 8 bits).</summary>
    public QuantizationEstimator Qat(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        int epochs = 1, double learningRate = 0.001, string featureColumnName = "Features", string labelColumnName = "Label") =>
        Qat(Fill(new QatOptions { Epochs = epochs, LearningRate = learningRate }, model, inputShape, config, featureColumnName, labelColumnName));

    /// <summary>Learned step size quantization (NNI's LsqQuantizer).</summary>
    public QuantizationEstimator Lsq(LsqOptions options) => new(Context, options);

    /// <summary>LSQ fine-tuning of <paramref name="model"/> with the given config.</summary>
    public QuantizationEstimator Lsq(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        int epochs = 1, double learningRate = 0.001, string featureColumnName = "Features", string labelColumnName = "Label") =>
        Lsq(Fill(new LsqOptions { Epochs = epochs, LearningRate = learningRate }, model, inputShape, config, featureColumnName, labelColumnName));

    /// <summary>DoReFa-Net (NNI's DoReFaQuantizer).</summary>
    public QuantizationEstimator DoReFa(DoReFaOptions options) => new(Context, options);

    /// <summary>DoReFa fine-tuning of <paramref name="model"/> with the given config.</summary>
    public QuantizationEstimator DoReFa(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        int epochs = 1, double learningRate = 0.001, string featureColumnName = "Features", string labelColumnName = "Label") =>
        DoReFa(Fill(new DoReFaOptions { Epochs = epochs, LearningRate = learningRate }, model, inputShape, config, featureColumnName, labelColumnName));

    /// <summary>Binarized neural network training (NNI's BNNQuantizer).</summary>
    public QuantizationEstimator Bnn(BnnOptions options) => new(Context, options);

    /// <summary>BNN training of <paramref name="model"/> with the given config (Adam).</summary>
    public QuantizationEstimator Bnn(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        int epochs = 1, double learningRate = 0.001, string featureColumnName = "Features", string labelColumnName = "Label") =>
        Bnn(Fill(new BnnOptions { Epochs = epochs, LearningRate = learningRate, Optimizer = QuantOptimizer.Adam }, model, inputShape, config, featureColumnName, labelColumnName));

    /// <summary>Post-training calibration (NNI's ObserverQuantizer).</summary>
    public QuantizationEstimator Observer(ObserverOptions options) => new(Context, options);

    /// <summary>Post-training calibration of <paramref name="model"/> with the given method and config.</summary>
    public QuantizationEstimator Observer(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        CalibrationMethod calibration = CalibrationMethod.Histogram, string featureColumnName = "Features", string labelColumnName = "Label") =>
        Observer(Fill(new ObserverOptions { Calibration = calibration }, model, inputShape, config, featureColumnName, labelColumnName));

    /// <summary>Weight-only rounding (NNI's NaiveQuantizer, rounding instead of truncating).</summary>
    public QuantizationEstimator Naive(NaiveOptions options) => new(Context, options);

    /// <summary>Weight-only rounding of <paramref name="model"/> with the given config (default: 8-bit per-channel
    /// weights of every conv and linear layer).</summary>
    public QuantizationEstimator Naive(nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config = null,
        string featureColumnName = "Features") =>
        Naive(Fill(new NaiveOptions(), model, inputShape, config, featureColumnName, "Label"));

    /// <summary>Post-training quantization of a float ONNX model (path or bytes), calibrated in ONNX Runtime over the
    /// data given to Fit: int8 per-channel weights and 8-bit activations on Conv, Gemm and MatMul.</summary>
    public OnnxQuantizationEstimator Observer(OnnxPtq.OnnxQuantizationOptions options) => new(Context, options, OnnxPtq.OnnxQuantizationMode.Observer);

    /// <summary>Weight-only int8 rounding of a float ONNX model (path or bytes); reads no data.</summary>
    public OnnxQuantizationEstimator Naive(OnnxPtq.OnnxQuantizationOptions options) => new(Context, options, OnnxPtq.OnnxQuantizationMode.Naive);

    /// <summary>Dynamic quantization of a float ONNX model (path or bytes), as ONNX Runtime's <c>quantize_dynamic</c>:
    /// int8 weights on MatMul/Gemm (and int8 embedding tables), activations quantized at run time from each batch's
    /// range — for transformers, whose activations no fixed range fits. Reads no data.</summary>
    public OnnxQuantizationEstimator Dynamic(OnnxPtq.DynamicQuantizationOptions options) => new(Context, options, OnnxPtq.OnnxQuantizationMode.Dynamic);

    /// <summary>Weight-only int4 quantization of a float ONNX model (path or bytes), for size: 4-bit block-wise weights
    /// on MatMul/Gemm and embedding tables (ONNX Runtime's MatMulNBits and GatherBlockQuantized), activations float.
    /// Rounding to nearest (the default) reads no data; GPTQ calibrates on the data given to Fit.</summary>
    public OnnxQuantizationEstimator Int4(OnnxPtq.Int4QuantizationOptions options) => new(Context, options, OnnxPtq.OnnxQuantizationMode.Int4);

    /// <summary>The BERT tokenizer step of a text pipeline: the text column in, <c>input_ids</c>, <c>attention_mask</c>
    /// and <c>token_type_ids</c> out (Int64 vectors of <paramref name="maxTokens"/>; Hugging Face's BertTokenizer rules
    /// over the model's vocab.txt). Append the quantized embedder after it; the chain saves as one .zip that production
    /// loads without MLNetQuant (see <see cref="Text.TextTokenizer"/>). Registers ONNX Runtime Extensions' operators on
    /// this context.</summary>
    /// <param name="vocabularyPath">The model's vocab.txt.</param>
    /// <param name="inputColumnName">The text column.</param>
    /// <param name="maxTokens">Tokens per row, [CLS] and [SEP] included (longer texts are truncated).</param>
    /// <param name="lowerCase">Lower-case and strip accents first (uncased models).</param>
    public Microsoft.ML.Transforms.Onnx.OnnxScoringEstimator TokenizeText(string vocabularyPath, string inputColumnName = "Text", int maxTokens = 128, bool lowerCase = true) =>
        Text.TextTokenizer.Create(Context, vocabularyPath, inputColumnName, maxTokens, lowerCase);

    private static T Fill<T>(T options, nn.Module<Tensor, Tensor> model, long[] inputShape, IEnumerable<QuantConfig>? config,
        string featureColumnName, string labelColumnName) where T : QuantizationOptions
    {
        options.Model = model;
        options.InputShape = inputShape;
        options.FeatureColumnName = featureColumnName;
        options.LabelColumnName = labelColumnName;
        options.Config = config?.ToList() ?? new List<QuantConfig>();
        return options;
    }
}
