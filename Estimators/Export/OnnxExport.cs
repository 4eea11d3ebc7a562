using MLNetQuant.Training;

namespace MLNetQuant.Export;

/// <summary>Exports a trained or calibrated network as the QDQ ONNX model MLNetQuant's transformers run (a float model
/// when nothing is quantized, e.g. after <see cref="FloatTrainingOptions"/>): for ONNX Runtime outside ML.NET, or to
/// compare sizes and speed with the float model.</summary>
public static class OnnxExport
{
    /// <summary>The ONNX bytes of <paramref name="run"/>'s network, with input <c>options.FeatureColumnName</c> (a float
    /// vector) and output <paramref name="scoreColumnName"/> (class probabilities, or the regression value), plus the
    /// int64 arg-max index output for classifiers; the per-layer report is in metadata_props.</summary>
    public static byte[] ToOnnx(QuantizationRun run, QuantizationOptions options, string scoreColumnName = "Score")
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(options);
        return QdqExporter.Export(run.Network, options.InputShape, run.Outputs, run.IsClassification, options.FeatureColumnName,
            scoreColumnName).OnnxBytes;
    }
}
