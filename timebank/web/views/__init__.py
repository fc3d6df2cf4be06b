"""The pages. One module per kind of person: public, member, volunteer, care (recipients and relatives), staff."""
