using Google.Protobuf;
using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>The float-model import the post-training quantizer applies, for users who want the float model in the
/// same form (for instance to compare speed with the quantized one at equal batch sizes).</summary>
public static class OnnxModelPreparation
{
    /// <summary>Imports the model as the quantizer does: opset 7–12 carried to 13 (later opsets kept), constants as
    /// initializers, Identity and Dropout removed, BatchNormalization folded into Conv/ConvTranspose/Gemm, a symbolic
    /// batch dimension.</summary>
    /// <exception cref="NotSupportedException">An opset outside 7–21 or an op the import cannot carry, named with its
    /// node and opset.</exception>
    public static byte[] Prepare(byte[] onnxModel)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        var model = OnnxModelReader.Read(onnxModel, nameof(onnxModel));
        OnnxImporter.Import(model, nameof(onnxModel));
        return model.ToByteArray();
    }
}
