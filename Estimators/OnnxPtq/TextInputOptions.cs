namespace MLNetQuant.OnnxPtq;

/// <summary>Makes a quantized BERT-family text encoder read text: the model gains ONNX Runtime Extensions'
/// <c>BertTokenizer</c> in front of its token inputs, so the transformer reads <see cref="TextColumnName"/> and each
/// row runs at its own token count (no padding to a fixed length — a 15-token sentence costs 15 tokens, not 128).
/// Calibration (and anything else that reads data while quantizing) sees the same tokens, padded to
/// <see cref="MaxTokens"/> by <c>TokenizeText</c>. Production loads the .zip with Microsoft.ML.OnnxRuntime.Extensions
/// registered on the context (docs/deploying.md).</summary>
public sealed class TextInputOptions
{
    /// <summary>The model's vocab.txt (one WordPiece token per line; line i is id i).</summary>
    public string VocabularyPath { get; set; } = "";

    /// <summary>The text column the transformer reads.</summary>
    public string TextColumnName { get; set; } = "Text";

    /// <summary>The most tokens per text, [CLS] and [SEP] included: longer texts are truncated before [SEP].</summary>
    public int MaxTokens { get; set; } = 128;

    /// <summary>Lower-case and strip accents first (uncased models such as all-MiniLM-L6-v2).</summary>
    public bool LowerCase { get; set; } = true;
}
