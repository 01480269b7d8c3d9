using Unlearnable.Clip.Text;

namespace Unlearnable.Clip.Tests;

public class TokenizerTests
{
    static readonly ClipTokenizer Tokenizer = ClipTokenizer.Default;

    [Fact]
    public void MatchesClipsGoldenIds()
    {
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0], Tokenizer.Encode("a photo of a cat", 10));
    }

    [Fact]
    public void CleansWhitespaceHtmlAndCase()
    {
        Assert.Equal(Tokenizer.EncodeRaw("a photo of a cat"), Tokenizer.EncodeRaw("  A   PHOTO\tof a&#32;Cat "));
    }

    [Theory]
    [InlineData("a photo of a cat", "a photo of a cat")]
    [InlineData("Unbelievably photogenic dachshunds", "unbelievably photogenic dachshunds")]
    [InlineData("café in zürich 🙂", "café in zürich 🙂")]
    // CLIP splits punctuation, contractions and digits into their own words, as its decoder shows.
    [InlineData("two dogs, running!", "two dogs , running !")]
    [InlineData("it's 2026", "it 's 2 0 2 6")]
    public void DecodeRestoresTextWithWordBoundaries(string text, string expected)
    {
        Assert.Equal(expected, Tokenizer.Decode(Tokenizer.Encode(text, 77)));
    }

    [Fact]
    public void LongTextIsTruncatedButStillEndsWithEot()
    {
        var text = string.Join(' ', Enumerable.Repeat("elephant", 100));
        var row = Tokenizer.Encode(text, 16);
        Assert.Equal(16, row.Length);
        Assert.Equal(ClipTokenizer.StartOfText, row[0]);
        Assert.Equal(ClipTokenizer.EndOfText, row[^1]);
        Assert.True(Tokenizer.CountTokens(text) > 14);
    }

    [Fact]
    public void EmptyTextIsSotEotAndTinyContextsAreRefused()
    {
        Assert.Equal([ClipTokenizer.StartOfText, ClipTokenizer.EndOfText, 0], Tokenizer.Encode("", 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Encode("x", 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Decode([ClipTokenizer.VocabularySize]));
    }

    [Fact]
    public void VocabularyHasClipsSizeAndSpecialTokens()
    {
        Assert.Equal("<|startoftext|>", Tokenizer.TokenString(ClipTokenizer.StartOfText));
        Assert.Equal("<|endoftext|>", Tokenizer.TokenString(ClipTokenizer.EndOfText));
        Assert.Equal("a</w>", Tokenizer.TokenString(320));
        Assert.Equal("cat</w>", Tokenizer.TokenString(2368));
    }
}
