using Google.Protobuf;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>The float-model preparation the post-training quantizer applies, for users who want the float model in
/// the same form (for instance to compare speed with the quantized one at equal batch sizes).</summary>
public static class OnnxModelPreparation
{
    /// <summary>Folds Conv→BatchNormalization pairs, lifts old opsets to 13 where nothing changes meaning, and makes
    /// the batch dimension symbolic.</summary>
    /// <exception cref="NotSupportedException">An op that cannot be carried to opset 13 unchanged, named.</exception>
    public static byte[] Prepare(byte[] onnxModel)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        var model = ModelProto.Parser.ParseFrom(onnxModel);
        OnnxGraphPreparation.Prepare(model);
        return model.ToByteArray();
    }
}
