using Microsoft.ML;

namespace MLNetQuant.Text;

/// <summary>Creates the BERT tokenizer step (<see cref="TextTokenizerTransformer"/>) from a model's vocab.txt — in a
/// training pipeline through <c>ml.Quantization().TokenizeText(...)</c>, in production directly.</summary>
public static class TextTokenizer
{
    /// <summary>The largest <c>maxTokens</c>: BERT-family models have at most 512 positions; 8192 leaves room for longer ones.</summary>
    public const int MaxTokensLimit = 8192;

    /// <summary>A tokenizer over the vocabulary file (one WordPiece token per line; line i is id i).</summary>
    /// <param name="vocabularyPath">The model's vocab.txt.</param>
    /// <param name="maxTokens">Tokens per row with [CLS] and [SEP]; the ONNX model's sequence length (e.g. 128).</param>
    /// <param name="lowerCase">Lower-case before WordPiece (true for uncased models such as all-MiniLM-L6-v2).</param>
    /// <param name="inputColumnName">The text column.</param>
    /// <param name="ml">The context for the row mapping (a new one if null).</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="vocabularyPath"/>.</exception>
    /// <exception cref="ArgumentException">An empty vocabulary, one without [CLS]/[SEP]/[UNK]/[PAD], or an empty column name.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxTokens"/> below 2 or above <see cref="MaxTokensLimit"/>.</exception>
    public static TextTokenizerTransformer Create(string vocabularyPath, int maxTokens = 128, bool lowerCase = true, string inputColumnName = "Text",
        MLContext? ml = null)
    {
        ArgumentNullException.ThrowIfNull(vocabularyPath);
        if (!File.Exists(vocabularyPath)) throw new FileNotFoundException($"No vocabulary at '{vocabularyPath}' (vocabularyPath).", vocabularyPath);
        if (maxTokens is < 2 or > MaxTokensLimit)
            throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, $"maxTokens must hold [CLS] and [SEP]: 2 to {MaxTokensLimit}.");
        if (string.IsNullOrWhiteSpace(inputColumnName)) throw new ArgumentException("inputColumnName must name a text column.", nameof(inputColumnName));
        var vocabulary = File.ReadAllLines(vocabularyPath);
        var missing = new[] { "[CLS]", "[SEP]", "[UNK]", "[PAD]" }.Where(t => !vocabulary.Contains(t)).ToArray();
        if (vocabulary.Length == 0 || missing.Length > 0)
            throw new ArgumentException($"'{vocabularyPath}' is not a BERT WordPiece vocabulary: it lacks {string.Join(", ", missing)}.", nameof(vocabularyPath));
        return new TextTokenizerTransformer(ml ?? new MLContext(), inputColumnName, vocabulary, maxTokens, lowerCase);
    }
}
