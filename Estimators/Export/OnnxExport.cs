using MLNetQuant.Training;

namespace MLNetQuant.Export;

/// <summary>Exports a trained or calibrated network as the QDQ ONNX model MLNetQuant's transformers run (a float model
/// when nothing is quantized, e.g. after <see cref="FloatTrainingOptions"/>): for ONNX Runtime outside ML.NET, or to
/// compare sizes and speed with the float model.</summary>
public static class OnnxExport
{
    /// <summary>The ONNX bytes of <paramref name="run"/>'s network, with input <c>options.FeatureColumnName</c> (a float
    /// vector; an imported ONNX model with several or non-float inputs keeps them, named after their columns) and output <paramref name="scoreColumnName"/> (class probabilities, or the regression value), plus the
    /// int64 arg-max index output for classifiers; the per-layer report is in metadata_props.</summary>
    public static byte[] ToOnnx(QuantizationRun run, QuantizationOptions options, string scoreColumnName = "Score")
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(options);
        return QdqExporter.Export(run.Network, run.Inputs ?? ModelInputs.For(options, null), run.Outputs, run.IsClassification, scoreColumnName).OnnxBytes;
    }

    /// <summary>The float ONNX model of a trained TorchSharp network (a Sequential of the supported layers; BatchNorm
    /// kept as its own nodes), to hand to the post-training quantizers of ONNX models —
    /// <c>ml.Quantization().Observer(new OnnxQuantizationOptions { ModelBytes = … })</c> — whose accuracy-aware options
    /// (cross-layer equalization, bias correction, AdaRound, mixed precision, the tolerance search) work on the graph.
    /// Input <paramref name="featureColumnName"/> (a float vector of the product of <paramref name="inputShape"/>),
    /// outputs <paramref name="scoreColumnName"/> (softmax probabilities when <paramref name="classification"/>, else the
    /// raw output) and, for classifiers, the arg-max index. <paramref name="model"/> is left as it was.</summary>
    public static byte[] ToFloatOnnx(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> model, long[] inputShape,
        bool classification = true, string featureColumnName = "Features", string scoreColumnName = "Score")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShape);
        // Naive with every layer excluded reads no data and quantizes nothing: the run's network is the float one.
        var options = new NaiveOptions
        {
            Model = model, InputShape = inputShape, FeatureColumnName = featureColumnName, Device = QuantDevice.Cpu,
            Config = { new Configuration.QuantConfig { OpTypes = { "default" }, Exclude = true } },
        };
        var run = QuantizationRunner.Run(new Microsoft.ML.MLContext(seed: 0), options, null);
        return QdqExporter.Export(run.Network, inputShape, run.Outputs, classification, featureColumnName, scoreColumnName).OnnxBytes;
    }
}
